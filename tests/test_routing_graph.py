"""Snapshots, link records and the routing graph (controllers.graph)."""

import math

import networkx as nx
import pytest

from controllers.errors import SnapshotError
from controllers.graph import LinkState, Snapshot, from_records, to_graph
from controllers.errors import RoutingError


def record(a, b, delay_s=0.004, capacity_bps=2e11, up=True, **extra):
    return {"a": a, "b": b, "delay_s": delay_s, "capacity_bps": capacity_bps, "up": up, **extra}


def test_to_graph_keeps_all_switches_and_only_up_links():
    snap = from_records(12.5, [4, 1, 2, 3], [record(1, 2), record(3, 2, delay_s=0.01), record(1, 3, up=False)])
    graph = to_graph(snap)
    assert sorted(graph.nodes) == [1, 2, 3, 4]  # isolated switch 4 kept
    assert sorted(map(tuple, map(sorted, graph.edges))) == [(1, 2), (2, 3)]
    assert graph.edges[2, 3] == {"delay_s": 0.01, "capacity_bps": 2e11}
    assert graph.graph["t_s"] == 12.5
    assert not graph.is_directed()


def test_snapshot_is_normalised_and_frozen():
    snap = from_records(0.0, [3, 1, 2], [record(2, 3), record(2, 1)])
    assert snap.switches == (1, 2, 3)
    assert [link.edge for link in snap.links] == [(1, 2), (2, 3)]
    with pytest.raises(AttributeError):
        snap.t_s = 1.0
    assert from_records(0.0, [1, 2, 3], [record(1, 2), record(2, 3)]) == snap  # order does not matter


@pytest.mark.parametrize(
    "records, fragment",
    [
        ([record(1, 2, delay=0.1)], "unknown key(s) ['delay']"),
        ([{"a": 1, "b": 2, "delay_s": 0.1, "up": True}], "missing key(s) ['capacity_bps']"),
        ([record(1, 2, delay_s=0.0)], "delay_s must be finite and > 0"),
        ([record(1, 2, delay_s=math.nan)], "delay_s must be a number"),
        ([record(1, 2, capacity_bps=-1.0)], "capacity_bps must be finite and > 0"),
        ([record(1, 2, up=1)], "up must be a bool"),
        ([record(1, 1)], "to itself"),
        ([record(1.0, 2)], "must be int switch ids"),
        ([record(1, 9)], "not in switches"),
        ([record(1, 2), record(2, 1)], "duplicate link (1, 2)"),
        (["not a dict"], "must be a mapping"),
    ],
)
def test_bad_records_fail_loudly(records, fragment):
    with pytest.raises(SnapshotError) as info:
        from_records(0.0, [1, 2, 3], records)
    assert fragment in str(info.value)
    assert isinstance(info.value, (ValueError, RoutingError))


def test_down_link_may_have_infinite_delay_but_never_nan():
    snap = from_records(0.0, [1, 2], [record(1, 2, delay_s=math.inf, capacity_bps=0.0, up=False)])
    assert to_graph(snap).number_of_edges() == 0
    with pytest.raises(SnapshotError):
        LinkState(1, 2, math.nan, 1.0, False)


def test_linkstate_requires_canonical_order_and_snapshot_checks():
    with pytest.raises(SnapshotError, match="canonical order"):
        LinkState(2, 1, 0.01, 1e9, True)
    with pytest.raises(SnapshotError, match="duplicate switch"):
        Snapshot(0.0, (1, 1), ())
    with pytest.raises(SnapshotError, match="finite"):
        Snapshot(math.inf, (1,), ())


def test_round_trip_from_graph_records():
    graph = nx.path_graph(5)
    records = [record(u, v, delay_s=0.001 * (u + 1)) for u, v in graph.edges]
    rebuilt = to_graph(from_records(0.0, graph.nodes, records))
    assert nx.utils.graphs_equal(rebuilt, to_graph(from_records(0.0, range(5), records)))
    assert rebuilt.edges[3, 4]["delay_s"] == pytest.approx(0.004)

"""Routing core of the laser-mesh testbed: pure, no os-ken.

Data flows ``Snapshot -> to_graph -> router(graph, destinations, ctx) ->
Routes -> build_flow_table -> FlowTable -> diff_rules -> RuleDiff``; the
os-ken adapter (``controllers.app``, the only module that imports os-ken)
turns a RuleDiff into OpenFlow 1.3 messages.

Example
-------
>>> from controllers import RoutingContext, from_records, make_router, to_graph
>>> snap = from_records(0.0, [1, 2, 3], [
...     {"a": 1, "b": 2, "delay_s": 0.004, "capacity_bps": 2e11, "up": True},
...     {"a": 2, "b": 3, "delay_s": 0.005, "capacity_bps": 2e11, "up": True}])
>>> router = make_router("min_delay", {})
>>> router(to_graph(snap), frozenset({3}), RoutingContext(t_s=0.0))
{1: {3: ((2, 1.0),)}, 2: {3: ((3, 1.0),)}, 3: {}}
"""

from .algorithms import ALGORITHMS, make_router
from .algorithms.base import Algorithm, NextHops, Param, Router, Routes, RoutingContext, validate_routes
from .errors import ParameterError, RoutingError, RuleError, SnapshotError
from .graph import LinkState, Snapshot, from_records, to_graph
from .rules import (
    FlowTable,
    GroupAction,
    HostAttachment,
    OutputAction,
    Rule,
    RuleDiff,
    SelectGroup,
    SwitchDiff,
    SwitchTable,
    apply_diff,
    build_flow_table,
    diff_rules,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "FlowTable",
    "GroupAction",
    "HostAttachment",
    "LinkState",
    "NextHops",
    "OutputAction",
    "Param",
    "ParameterError",
    "Router",
    "Routes",
    "RoutingContext",
    "RoutingError",
    "Rule",
    "RuleDiff",
    "RuleError",
    "SelectGroup",
    "Snapshot",
    "SnapshotError",
    "SwitchDiff",
    "SwitchTable",
    "apply_diff",
    "build_flow_table",
    "diff_rules",
    "from_records",
    "make_router",
    "to_graph",
    "validate_routes",
]

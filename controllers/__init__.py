"""Routing core of the laser-mesh testbed: pure, no os-ken.

Data flows ``Snapshot -> to_graph -> router(graph, destinations, ctx) ->
Routes -> build_flow_table -> FlowTable -> diff_rules -> RuleDiff``;
``controllers.ofmsg`` turns a switch's diff into OpenFlow 1.3 messages
(given a datapath's ``ofproto``/``ofproto_parser``), ``controllers.session``
keeps the controller's state, and the os-ken shim ``controllers.app`` (the
only module that imports os-ken) unpacks events and sends the messages.

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
from .diff import Op, RuleDiff, SwitchDiff, diff_rules
from .errors import ParameterError, RoutingError, RuleError, SnapshotError
from .graph import LinkState, Snapshot, from_records, to_graph
from .rules import (
    FlowTable,
    GroupAction,
    HostAttachment,
    OutputAction,
    Rule,
    SelectGroup,
    SwitchTable,
    build_flow_table,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "FlowTable",
    "GroupAction",
    "HostAttachment",
    "LinkState",
    "NextHops",
    "Op",
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
    "build_flow_table",
    "diff_rules",
    "from_records",
    "make_router",
    "to_graph",
    "validate_routes",
]

"""The diff between two rule sets, and the order that is safe on a live switch.

Plan, then apply: :func:`~controllers.rules.build_flow_table` plans the whole table for
a step, :func:`diff_rules` computes what to send (only what changed), and
:meth:`SwitchDiff.operations` gives the order that keeps traffic on a valid rule
throughout. :func:`controllers.ofmsg.switch_messages` turns a :class:`SwitchDiff` into
OpenFlow 1.3 messages. Pure, no os-ken.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .rules import FlowTable, Rule, SelectGroup, SwitchTable

__all__ = ["Op", "SwitchDiff", "RuleDiff", "diff_rules"]


class Op(enum.Enum):
    """Kinds of change, in the order :meth:`RuleDiff.operations` yields them."""

    GROUP_ADD = "group_add"
    GROUP_MODIFY = "group_modify"
    FLOW_ADD = "flow_add"
    FLOW_MODIFY = "flow_modify"
    FLOW_DELETE = "flow_delete"
    GROUP_DELETE = "group_delete"


@dataclass(frozen=True)
class SwitchDiff:
    """Changes for one switch.

    ``flow_deletes`` and ``group_deletes`` hold the *old* rules and groups
    (their match/priority or id is what a strict delete needs); the other
    fields hold the new ones.
    """

    flow_adds: tuple[Rule, ...] = ()
    flow_modifies: tuple[Rule, ...] = ()
    flow_deletes: tuple[Rule, ...] = ()
    group_adds: tuple[SelectGroup, ...] = ()
    group_modifies: tuple[SelectGroup, ...] = ()
    group_deletes: tuple[SelectGroup, ...] = ()

    def __bool__(self) -> bool:
        return any((self.flow_adds, self.flow_modifies, self.flow_deletes,
                    self.group_adds, self.group_modifies, self.group_deletes))

    def operations(self) -> Iterator[tuple[Op, Rule | SelectGroup]]:
        """Changes in an order that is safe on a live OpenFlow 1.3 switch.

        New and changed groups first (a flow may only point at an existing
        group), then flow adds and modifies, then flow deletes, and group
        deletes last: in OpenFlow 1.3 deleting a group also deletes every
        flow that still points at it.  Traffic keeps a valid rule throughout.
        """
        for op, items in (
            (Op.GROUP_ADD, self.group_adds),
            (Op.GROUP_MODIFY, self.group_modifies),
            (Op.FLOW_ADD, self.flow_adds),
            (Op.FLOW_MODIFY, self.flow_modifies),
            (Op.FLOW_DELETE, self.flow_deletes),
            (Op.GROUP_DELETE, self.group_deletes),
        ):
            for item in items:
                yield op, item

    @property
    def flow_mods(self) -> int:
        """Number of flow mods this diff sends."""
        return len(self.flow_adds) + len(self.flow_modifies) + len(self.flow_deletes)

    @property
    def group_mods(self) -> int:
        """Number of group mods this diff sends."""
        return len(self.group_adds) + len(self.group_modifies) + len(self.group_deletes)


@dataclass(frozen=True)
class RuleDiff:
    """Per-switch changes; only switches with at least one change appear."""

    switches: Mapping[int, SwitchDiff] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.switches)

    def operations(self) -> Iterator[tuple[int, Op, Rule | SelectGroup]]:
        """``(switch, op, item)`` for every change, switches in id order."""
        for switch, change in self.switches.items():
            for op, item in change.operations():
                yield switch, op, item

    @property
    def flow_mods(self) -> int:
        return sum(c.flow_mods for c in self.switches.values())

    @property
    def group_mods(self) -> int:
        return sum(c.group_mods for c in self.switches.values())


_EMPTY_TABLE = SwitchTable()


def _diff_switch(old: SwitchTable, new: SwitchTable) -> SwitchDiff:
    old_rules, new_rules = old.rules, new.rules
    adds, modifies, deletes = [], [], []
    for address, rule in new_rules.items():
        before = old_rules.get(address)
        if before is rule:
            continue
        if before is None or before.priority != rule.priority:
            adds.append(rule)
        elif before != rule:
            modifies.append(rule)
    for address, rule in old_rules.items():
        after = new_rules.get(address)
        if after is None or (after is not rule and after.priority != rule.priority):
            deletes.append(rule)  # gone, or replaced by an entry of another priority
    group_adds, group_modifies = [], []
    for gid, group in new.groups.items():
        before = old.groups.get(gid)
        if before is None:
            group_adds.append(group)
        elif before != group:
            group_modifies.append(group)
    group_deletes = [group for gid, group in old.groups.items() if gid not in new.groups]
    return SwitchDiff(
        tuple(adds), tuple(modifies), tuple(deletes),
        tuple(group_adds), tuple(group_modifies), tuple(group_deletes),
    )


def diff_rules(old: FlowTable, new: FlowTable) -> RuleDiff:
    """What to send to turn the installed table ``old`` into ``new``.

    Unchanged rules and groups are not in the diff; applied to ``old`` on a
    switch (the tests' fake flow table does this with the OpenFlow messages of
    :func:`controllers.ofmsg.switch_messages`) it gives ``new``.  A rule whose priority changes is a
    delete plus an add (a different OpenFlow flow entry).  Within a switch,
    changes follow the tables' order (ascending address and group id for
    tables from :func:`~controllers.rules.build_flow_table`).
    """
    changes = {}
    for switch in sorted(set(old) | set(new)):
        before = old.get(switch, _EMPTY_TABLE)
        after = new.get(switch, _EMPTY_TABLE)
        if before is after or before == after:  # mostly identity checks (interned rules)
            continue
        change = _diff_switch(before, after)
        if change:
            changes[switch] = change
    return RuleDiff(changes)

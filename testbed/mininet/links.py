"""Mininet interface and link objects for links the testbed has already built.

:class:`TestbedIntf` names an existing interface (a switch port ``lm<a>-<b>`` or
``lmh<n>``, a host's ``eth0``) and configures nothing. :class:`TestbedLink` joins two of
them and reports the link as it is *now*: ``up``, ``delay_s`` (one-way, seconds) and
``rate_bps`` (shaped rate per direction, bit/s; None for the unshaped host veth). The
values come from a :class:`LinkState` (see :mod:`testbed.mininet.net`), which reads what
the clock last applied: the schedule stays the authority and the clock goes on changing
them while Mininet code runs.
"""

from __future__ import annotations

from typing import Protocol

from mininet.link import Intf, Link


class LinkState(Protocol):
    def link_up(self, link_id: int) -> bool: ...
    def link_delay_s(self, link_id: int) -> float: ...
    def manual_note(self, link_id: int) -> str: ...


def _stay(*_args, **_kwargs) -> None:
    """Mininet moves a new interface into its node's namespace; ours are in place already."""


class TestbedIntf(Intf):
    """An interface that exists already; ``ip`` is ``(address, prefix length)`` or None."""

    def __init__(self, name, node=None, port=None, link=None, mac=None, ip=None, **params):
        self.node = node
        self.name = name
        self.link = link
        self.mac = mac
        self.ip, self.prefixLen = (ip if ip else (None, None))
        self.params = params
        if node is not None:
            node.addIntf(self, port=port, moveIntfFn=_stay)

    def config(self, **_params):
        return {}

    def status(self):
        return "OK" if self.link is None else self.link.status()


class TestbedLink(Link):
    """One link of the run between two Mininet nodes, as the clock has it now.

    ``link_id`` is the plan's link id (None for a host's veth to its own switch, which is
    never delayed, shaped or switched off); ``kind`` is ``isl``, ``gsl`` or ``host``.
    """

    def __init__(self, intf1: TestbedIntf, intf2: TestbedIntf, state: LinkState | None = None,
                 link_id: int | None = None, kind: str = "host", rate_bps: float | None = None):
        self.intf1, self.intf2 = intf1, intf2
        intf1.link = intf2.link = self
        self.fast = True
        self._state = state
        self.link_id = link_id
        self.kind = kind
        self._rate_bps = rate_bps

    @property
    def up(self) -> bool:
        return True if self.link_id is None else self._state.link_up(self.link_id)

    @property
    def delay_s(self) -> float:
        """One-way propagation delay in force now, seconds (0 for a host's veth)."""
        return 0.0 if self.link_id is None else self._state.link_delay_s(self.link_id)

    @property
    def rate_bps(self) -> float | None:
        """Shaped rate per direction, bit/s (capacity x rate_scale); None: unshaped."""
        return self._rate_bps

    def status(self):
        if self.link_id is None:
            return "(up, host veth, no delay, unshaped)"
        note = self._state.manual_note(self.link_id)
        return (f"({'up' if self.up else 'DOWN'}, {self.kind}, {self.delay_s * 1e3:.3f} ms one-way, "
                f"{self.rate_bps / 1e6:g} Mbit/s{', ' + note if note else ''})")

    def delete(self):
        """The testbed deletes its links at tear-down, all at once."""

    def stop(self):
        """See :meth:`delete`."""

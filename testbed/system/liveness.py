"""Is every component of a running network still there? Cheap checks, named faults.

The clock calls :meth:`testbed.emulation.Emulation.check_alive` before every step; it
uses the two checks here:

- :func:`process_fault` polls every process the testbed started and has not stopped
  (:data:`testbed.system.tracking.LIVE`: OVS shards, the delay line, the controller,
  agents, iperf3, probes, capture replays) with one ``waitpid(WNOHANG)`` each — no
  subprocess, no /proc scan — and names the first that exited unexpectedly by what it
  carried ("OVS shard 1 (switches lms16-lms31) exited (signal 9)"). A process killed by a
  signal is reported before processes that merely exited with an error, since those are
  usually its victims (an agent whose peer died fails to connect).
- :func:`session_fault` compares the switches the controller reports connected (its
  ``status`` reply) with the plan's.

Both return a :class:`ComponentFault`, a :class:`~testbed.errors.RunFailed` that also
carries a machine-readable record (:meth:`ComponentFault.record`) for ``INCOMPLETE`` and
the manifest.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from testbed.errors import RunFailed


class ComponentFault(RunFailed):
    """A component of the running network died or disconnected.

    Attributes
    ----------
    component : str
        What failed, as named in the message ("OVS shard 1 (switches lms16-lms31)").
    kind : str
        ``"process_exit"`` or ``"openflow_disconnect"``.
    details : dict
        JSON-friendly facts: role, pid, exit status or signal, switches, ...
    """

    def __init__(self, message: str, component: str, kind: str, **details):
        super().__init__(message)
        self.component = component
        self.kind = kind
        self.details = details

    def record(self) -> dict:
        return {"kind": self.kind, "component": self.component, "message": str(self), **self.details}


def process_fault(processes: Iterable) -> ComponentFault | None:
    """The first unexpected exit among ``processes`` (:class:`~testbed.system.tracking.Spawned`),
    signals before error statuses, then in start order; None if all run or ended as expected."""
    found = []
    for p in processes:
        line = p.fault()
        if line is not None:
            found.append((p.popen.returncode >= 0, p.serial, p, line))
    if not found:
        return None
    _, _, p, line = min(found, key=lambda f: (f[0], f[1]))
    code = p.popen.returncode
    return ComponentFault(line, p.label, "process_exit", role=p.role, pid=p.pid,
                          exit_status=code if code >= 0 else None, signal=-code if code < 0 else None)


def switch_ranges(names: Sequence[str]) -> str:
    """``lms16-lms31`` for a block of switch names (a shard's), or the names if three or fewer."""
    if len(names) <= 3:
        return ", ".join(names) or "no switches"
    return f"{names[0]}-{names[-1]}"


def session_fault(connected: Iterable[int], expected: Mapping[int, str], shard_of: Mapping[int, str]) -> ComponentFault | None:
    """A fault naming the switches in ``expected`` (node id -> bridge name) that the controller
    no longer reports connected; ``shard_of``: node id -> the OVS daemon holding it."""
    missing = sorted(set(expected) - set(connected))
    if not missing:
        return None
    names = [expected[n] for n in missing]
    shards = sorted({shard_of.get(n, "?") for n in missing})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    message = (f"{len(names)} switch{'es' if len(names) > 1 else ''} ({shown}, in {', '.join(shards)}) "
               f"lost the OpenFlow session with the controller")
    return ComponentFault(message, f"OpenFlow session of {shown}", "openflow_disconnect",
                          switches=names, daemons=shards)

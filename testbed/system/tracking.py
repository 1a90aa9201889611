"""What the testbed creates, named and recorded so that it can always be removed.

Everything the testbed makes carries a mark that nothing else carries:

- network namespaces are named ``lmtb-*``;
- interfaces (veths, taps) get the interface alias ``lmtb`` and the interface group
  ``LINK_GROUP``, so they can be deleted in one batched unregistration;
- Open vSwitch bridges carry ``external_ids:lmtb-run=<run id>``; private Open vSwitch
  daemons keep their databases and sockets in ``STATE_DIR/ovs/``;
- processes are recorded in ``STATE_DIR/procs/<pid>`` with their kernel start time, so a
  recycled pid is never killed by mistake, and with the pid and start time of the testbed
  process that started them (its *owner*): a record whose owner is gone is a leftover;
- network namespaces are recorded in ``STATE_DIR/netns/<name>`` before they are made
  (after checking that none of them exists), then with the inode of ``/run/netns/<name>``:
  ``testbed clean`` removes only recorded namespaces whose inode still matches, never one
  merely named like ours.

``STATE_DIR`` lives on /run (tmpfs): it does not survive a reboot, and neither does
anything it describes. One run at a time holds ``STATE_DIR/lock`` (flock; released by the
kernel when the holder dies, even on ``kill -9``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import EnvironmentProblem
from testbed.system.files import atomic_write

STATE_DIR = Path(os.environ.get("LMTB_STATE_DIR", "/run/lmtb"))
NETNS_PREFIX = "lmtb-"
IFALIAS = "lmtb"
LINK_GROUP = 0x4C4D5442     # "LMTB": interface group of every root-namespace interface we create
OVS_EXTERNAL_ID = "lmtb-run"


def _proc_dir() -> Path:
    d = STATE_DIR / "procs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def process_start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks (field 22 of /proc/PID/stat), or None if no
    such process runs. A zombie (state Z or X: exited, not yet reaped) does not run: None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


#: This process as an owner of records: (pid, kernel start ticks).
OWNER = (os.getpid(), process_start_ticks(os.getpid()))


def _owner() -> tuple[int, int | None]:
    global OWNER
    if OWNER[0] != os.getpid():      # after a fork
        OWNER = (os.getpid(), process_start_ticks(os.getpid()))
    return OWNER


def owner_alive(owner: tuple[int, int | None] | None) -> bool:
    """True while the testbed process that made a record still runs (no owner recorded: True)."""
    if owner is None:
        return True
    return process_start_ticks(owner[0]) == owner[1]


@dataclass(frozen=True)
class TrackedProcess:
    pid: int
    start_ticks: int
    role: str
    argv: tuple[str, ...]
    owner: tuple[int, int | None] | None = None   # (pid, start ticks) of the testbed process

    def alive(self) -> bool:
        """True while the recorded process (same pid *and* start time) still exists."""
        return process_start_ticks(self.pid) == self.start_ticks


def record_process(pid: int, role: str, argv: list[str]) -> TrackedProcess:
    ticks = process_start_ticks(pid)
    if ticks is None:
        raise EnvironmentProblem(f"process {role} (pid {pid}) exited at once: {' '.join(argv)}")
    tp = TrackedProcess(pid, ticks, role, tuple(argv), _owner())
    path = _proc_dir() / str(pid)
    atomic_write(path, json.dumps({"pid": pid, "start_ticks": ticks, "role": role, "argv": argv,
                                   "owner": list(tp.owner)}))
    return tp


def forget_process(pid: int) -> None:
    (_proc_dir() / str(pid)).unlink(missing_ok=True)


def recorded_processes() -> list[TrackedProcess]:
    out = []
    for f in sorted(_proc_dir().glob("[0-9]*")):
        try:
            d = json.loads(f.read_text())
            owner = tuple(d["owner"]) if d.get("owner") else None
            out.append(TrackedProcess(d["pid"], d["start_ticks"], d["role"], tuple(d["argv"]), owner))
        except (OSError, ValueError, KeyError):
            f.unlink(missing_ok=True)
    return out


def terminate(tp: TrackedProcess, grace_s: float = 2.0) -> bool:
    """Ends a recorded process (SIGTERM, then SIGKILL after ``grace_s``). True if it was alive."""
    return bool(terminate_all([tp], grace_s))


def terminate_all(tps: list[TrackedProcess], grace_s: float = 2.0, kill_now=lambda tp: False) -> list[TrackedProcess]:
    """Ends recorded processes together: SIGTERM to all (SIGKILL at once where ``kill_now(tp)``),
    one shared wait of at most ``grace_s``, SIGKILL to the rest, then at most 2 s more.
    Returns those that were alive. Zombies count as gone (see :func:`process_start_ticks`)."""
    alive = [tp for tp in tps if tp.alive()]
    for tp in tps:
        if tp not in alive:
            forget_process(tp.pid)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        pending = [tp for tp in alive if tp.alive()]
        for tp in pending:
            try:
                os.kill(tp.pid, signal.SIGKILL if kill_now(tp) else sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while pending and time.monotonic() < deadline:
            for tp in pending:
                try:  # reap it if it is our child
                    os.waitpid(tp.pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            pending = [tp for tp in pending if tp.alive()]
            if pending:
                time.sleep(0.02)
    for tp in alive:
        forget_process(tp.pid)
    return alive


class Spawned:
    """A process started and tracked by the testbed; ``stop()`` ends and forgets it.

    Every instance is numbered in start order (``serial``) and listed in :data:`LIVE`
    until stopped, so a run can stop whatever it started, whoever started it.
    """

    _next_serial = 0

    def __init__(self, argv: list[str], role: str, netns: str | None = None, *, label: str | None = None,
                 ok_exit: frozenset[int] = frozenset({0}), hint=None, **popen_kw):
        """``label``: what the process is and carries, for fault messages ("OVS shard 1 (switches
        lms16-lms31)"); ``ok_exit``: exit statuses that are not a fault; ``hint()``: a short
        text that explains an unexpected exit (a log's last line)."""
        full = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
        self.role = role
        self.netns = netns
        self.label = label or (f"{role} in {netns}" if netns else role)
        self.ok_exit = ok_exit
        self.hint = hint
        self.stopping = False     # set by stop(): an exit from now on is expected
        self.argv = full
        self.popen = subprocess.Popen(full, start_new_session=True, **popen_kw)
        try:
            self.tracked = record_process(self.popen.pid, role, full)
        except EnvironmentProblem:
            self.popen.wait()
            raise
        Spawned._next_serial += 1
        self.serial = Spawned._next_serial
        LIVE[self.serial] = self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def fault(self) -> str | None:
        """One line if this process exited unexpectedly (not stopped by us, status not in
        ``ok_exit``), else None. Cheap: one ``waitpid(WNOHANG)``."""
        if self.stopping:
            return None
        code = self.popen.poll()
        if code is None or code in self.ok_exit:
            return None
        how = f"signal {-code}" if code < 0 else f"status {code}"
        hint = self.hint() if self.hint else ""
        return f"{self.label} exited ({how}){'; ' + hint if hint else ''}"

    def stop(self, grace_s: float = 2.0) -> None:
        self.stopping = True
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        forget_process(self.popen.pid)
        LIVE.pop(self.serial, None)


#: serial -> Spawned, for every process started and not yet stopped (this Python process)
LIVE: dict[int, Spawned] = {}


def spawn_mark() -> int:
    """The serial of the latest process started; see :func:`stop_spawned_after`."""
    return Spawned._next_serial


def stop_spawned_after(mark: int, keep: set[int] = frozenset(), grace_s: float = 1.0) -> list[str]:
    """Stops every live process started after ``mark`` except the serials in ``keep``."""
    stopped = []
    for serial, p in sorted(LIVE.items()):
        if serial > mark and serial not in keep:
            p.stop(grace_s)
            stopped.append(p.role)
    return stopped


@contextlib.contextmanager
def interrupts_held():
    """Holds Ctrl-C (SIGINT) and SIGTERM while the body runs, then raises KeyboardInterrupt.

    For tear-down: a second Ctrl-C from an impatient user must not stop it halfway and
    leave half a network behind. Only the main thread can set handlers; elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if held:
        raise KeyboardInterrupt


_locks_held = 0     # RunLocks this process holds


def lock_held_here() -> bool:
    """True while this process holds the run lock."""
    return _locks_held > 0


class RunLock:
    """Exclusive lock for one run; a second concurrent run fails with a clear message."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def acquire(self, wait_s: float | None = None) -> None:
        """Takes the lock; waits up to ``wait_s`` (default: $LMTB_LOCK_WAIT_S or 0) for it."""
        if wait_s is None:
            wait_s = float(os.environ.get("LMTB_LOCK_WAIT_S", "0"))
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(STATE_DIR / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise EnvironmentProblem(
                    f"another testbed run is active (pid {holder}); wait for it, or stop it and run 'testbed clean'"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        global _locks_held
        _locks_held += 1

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            global _locks_held
            _locks_held -= 1

    def held_by_other(self) -> int | None:
        """Pid of a live run holding the lock, or None (used by ``testbed clean``)."""
        path = STATE_DIR / "lock"
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            txt = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(txt) if txt.isdigit() else -1
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def run_tracked(argv: list[str], role: str, netns: str | None = None,
                timeout_s: float = 60.0, **spawn_kw) -> subprocess.CompletedProcess:
    """Runs a bounded command (in a host namespace) to completion, tracked while it runs.

    Output is captured as text. On timeout the process is ended and
    :class:`EnvironmentProblem` is raised naming the command. ``spawn_kw``: ``label``,
    ``ok_exit``, ``hint`` of :class:`Spawned`.
    """
    proc = Spawned(argv, role=role, netns=netns, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   **spawn_kw)
    try:
        out, err = proc.popen.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise EnvironmentProblem(f"{role} did not finish within {timeout_s:.0f} s: {' '.join(proc.argv)}") from None
    finally:
        forget_process(proc.pid)
        if proc.fault() is None:   # an unexpected exit stays listed: the run's liveness check names it
            LIVE.pop(proc.serial, None)
    return subprocess.CompletedProcess(proc.argv, proc.popen.returncode, out, err)

"""What the testbed creates, named and recorded so that it can always be removed.

Everything the testbed makes carries a mark that nothing else carries:

- network namespaces are named ``lmtb-*``;
- interfaces (veths, taps) get the interface alias ``lmtb`` and the interface group
  ``LINK_GROUP``, so they can be deleted in one batched unregistration;
- Open vSwitch bridges carry ``external_ids:lmtb-run=<run id>``; private Open vSwitch
  daemons keep their databases and sockets in ``STATE_DIR/ovs/``;
- processes are recorded in ``STATE_DIR/procs/<pid>`` with their kernel start time, so a
  recycled pid is never killed by mistake.

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

from .errors import EnvironmentProblem

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
    """Kernel start time of ``pid`` in clock ticks (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class TrackedProcess:
    pid: int
    start_ticks: int
    role: str
    argv: tuple[str, ...]

    def alive(self) -> bool:
        """True while the recorded process (same pid *and* start time) still exists."""
        return process_start_ticks(self.pid) == self.start_ticks


def record_process(pid: int, role: str, argv: list[str]) -> TrackedProcess:
    ticks = process_start_ticks(pid)
    if ticks is None:
        raise EnvironmentProblem(f"process {role} (pid {pid}) exited at once: {' '.join(argv)}")
    tp = TrackedProcess(pid, ticks, role, tuple(argv))
    path = _proc_dir() / str(pid)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "start_ticks": ticks, "role": role, "argv": argv}))
    tmp.replace(path)
    return tp


def forget_process(pid: int) -> None:
    (_proc_dir() / str(pid)).unlink(missing_ok=True)


def recorded_processes() -> list[TrackedProcess]:
    out = []
    for f in sorted(_proc_dir().glob("[0-9]*")):
        try:
            d = json.loads(f.read_text())
            out.append(TrackedProcess(d["pid"], d["start_ticks"], d["role"], tuple(d["argv"])))
        except (OSError, ValueError, KeyError):
            f.unlink(missing_ok=True)
    return out


def terminate(tp: TrackedProcess, grace_s: float = 2.0) -> bool:
    """Ends a recorded process (SIGTERM, then SIGKILL after ``grace_s``). True if it was alive."""
    if not tp.alive():
        forget_process(tp.pid)
        return False
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.kill(tp.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and tp.alive():
            try:  # reap it if it is our child
                os.waitpid(tp.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.02)
        if not tp.alive():
            break
    forget_process(tp.pid)
    return True


class Spawned:
    """A process started and tracked by the testbed; ``stop()`` ends and forgets it.

    Every instance is numbered in start order (``serial``) and listed in :data:`LIVE`
    until stopped, so a run can stop whatever it started, whoever started it.
    """

    _next_serial = 0

    def __init__(self, argv: list[str], role: str, netns: str | None = None, **popen_kw):
        full = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
        self.role = role
        self.netns = netns
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

    def stop(self, grace_s: float = 2.0) -> None:
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

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

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
                timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Runs a bounded command (in a host namespace) to completion, tracked while it runs.

    Output is captured as text. On timeout the process is ended and
    :class:`EnvironmentProblem` is raised naming the command.
    """
    proc = Spawned(argv, role=role, netns=netns, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.popen.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise EnvironmentProblem(f"{role} did not finish within {timeout_s:.0f} s: {' '.join(proc.argv)}") from None
    finally:
        forget_process(proc.pid)
        LIVE.pop(proc.serial, None)
    return subprocess.CompletedProcess(proc.argv, proc.popen.returncode, out, err)

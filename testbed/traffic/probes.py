"""RTT and one-way probes between host pairs, from kernel timestamps (nanosecond stamps).

:class:`ProbeMesh` runs :mod:`testbed.traffic.udpprobe` in every host namespace that a
pair names (one process per host: the sender for its pairs and the reflector for its
peers), waits until all are ready, then starts them at one common time. :func:`account`
turns their records into one row per probe sent (pure; tested on synthetic records):

- ``t_unix``: send time (Unix s; the kernel's TX stamp of the probe where it gave one);
- ``rtt_s`` = (T4 - T1) - (T3 - T2): the round trip without the reflector's own turnaround
  (as TWAMP reports it); NaN when no reply came within ``timeout_s`` (lost);
- ``one_way_s`` = T2 - T1 (forward), ``back_s`` = T4 - T3 (return), ``turnaround_s`` = T3 - T2;
  sender and reflector read the same CLOCK_REALTIME (one machine), so these are exact;
- ``reordered``: the reply arrived after the reply of a later probe of the same pair;
- ``tx_kernel``: T1 is the kernel's TX stamp (else the user-space time before ``sendmsg``).

Differences are taken in integer ns before they become float seconds (a Unix time as a
float64 only resolves ~0.2 us).
"""

from __future__ import annotations

import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from testbed.errors import RunFailed
from testbed.system.tracking import Spawned

PROBE_PORT = 7400          # UDP port of every probe process (agents use 7000 + k)
PROGRAM = Path(__file__).with_name("udpprobe.py")
COLUMNS = ["t_unix", "src", "dst", "seq", "rtt_s", "one_way_s", "back_s", "turnaround_s", "reordered",
           "tx_kernel"]


def account(sent: pd.DataFrame, replies: pd.DataFrame, timeout_s: float) -> pd.DataFrame:
    """One row per probe sent (columns :data:`COLUMNS`), ordered by pair and sequence number.

    Parameters
    ----------
    sent : columns src, dst, seq, t_send_ns (int, Unix ns), tx_kernel (0/1).
    replies : columns src, dst, seq, t_reflect_rx_ns, t_reflect_tx_ns, t_recv_ns (int, Unix ns),
        rows in the order the sender received them. Duplicates after the first are ignored.
    timeout_s : a reply later than this after its probe's send time counts as lost.
    """
    keys = ["src", "dst", "seq"]
    stamps = ["t_reflect_rx_ns", "t_reflect_tx_ns", "t_recv_ns"]
    # Nullable integers: a merge must not turn ns stamps into float64 (256 ns steps at 1.7e18).
    rep = replies.astype({c: "Int64" for c in stamps}).assign(order=np.arange(len(replies)))
    df = sent.merge(rep.drop_duplicates(keys, keep="first"), on=keys, how="left")
    t1 = df["t_send_ns"].to_numpy(np.int64)
    t2, t3, t4 = (df[c].fillna(0).to_numpy(np.int64) for c in stamps)
    answered = df["t_recv_ns"].notna().to_numpy() & ((t4 - t1) <= int(timeout_s * 1e9))
    nan = np.where(answered, 1.0, np.nan)
    out = pd.DataFrame({
        "t_unix": t1 / 1e9, "src": df["src"].to_numpy(), "dst": df["dst"].to_numpy(),
        "seq": df["seq"].to_numpy(np.int64),
        "rtt_s": ((t4 - t1) - (t3 - t2)) / 1e9 * nan, "one_way_s": (t2 - t1) / 1e9 * nan,
        "back_s": (t4 - t3) / 1e9 * nan, "turnaround_s": (t3 - t2) / 1e9 * nan,
        "order": np.where(answered, df["order"].fillna(-1).to_numpy(), np.nan),
        "tx_kernel": df["tx_kernel"].astype(bool).to_numpy()})
    out["reordered"] = _reordered(out)
    out = out.sort_values(["src", "dst", "seq"], kind="stable").reset_index(drop=True)
    return out[COLUMNS]


def _reordered(rows: pd.DataFrame) -> np.ndarray:
    """True for a reply that arrived after a reply with a higher sequence number (same pair)."""
    flag = np.zeros(len(rows), dtype=bool)
    got = rows[rows["order"].notna()].sort_values("order", kind="stable")
    if len(got):
        seen_max = got.groupby(["src", "dst"])["seq"].cummax().groupby([got["src"], got["dst"]]).shift(1)
        flag[got.index[(got["seq"] < seen_max).to_numpy()]] = True
    return flag


class ProbeMesh:
    """UDP probes at ``rate_hz`` for each (src, dst) pair, ``duration_s`` long from when all are ready.

    The constructor starts one process per host and returns at once; a thread waits for
    every ``ready`` and then gives them one start time ``lead_s`` later (:attr:`start_unix`),
    so slow interpreter starts neither skew the first probes nor hold up the caller.
    ``collect()`` returns :func:`account` rows; ``timeout_s`` bounds how long a reply may take.
    """

    def __init__(self, emu, pairs: Sequence[tuple[str, str]], rate_hz: float, duration_s: float,
                 timeout_s: float = 1.0, workdir: Path | None = None, port: int = PROBE_PORT,
                 ready_timeout_s: float = 30.0, lead_s: float = 0.05):
        self.pairs = list(dict.fromkeys((s, d) for s, d in pairs))
        self.rate_hz = float(rate_hz)
        self.count = max(1, int(round(duration_s * rate_hz)))
        self.timeout_s = timeout_s
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="lmtb-probes-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        hosts = list(dict.fromkeys(h for pair in self.pairs for h in pair))
        session = random.getrandbits(32)
        self.procs: dict[str, Spawned] = {}
        self._start_unix: float | None = None
        self._error: BaseException | None = None
        try:
            for h in hosts:
                spec = emu.host(h)
                argv = [sys.executable, str(PROGRAM), "--bind", spec.ip, "--port", str(port),
                        "--session", str(session), "--rate-hz", f"{self.rate_hz!r}", "--count", str(self.count),
                        "--out", str(self.workdir / h)]
                for s, d in self.pairs:
                    if s == h:
                        argv += ["--target", f"{d}={emu.host(d).ip}"]
                err = open(self.workdir / f"{h}.stderr", "w")
                targets = sum(s == h for s, _ in self.pairs)
                self.procs[h] = Spawned(argv, role="probe", netns=spec.netns, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=err, text=True,
                                        label=f"the RTT probes of {h} (sending to {targets} host(s), answering all)")
                err.close()
        except BaseException:
            self.stop()
            raise
        self._starter = threading.Thread(target=self._start, args=(ready_timeout_s, lead_s), daemon=True,
                                         name="probe-start")
        self._starter.start()

    def _start(self, ready_timeout_s: float, lead_s: float) -> None:
        try:
            self._await_ready(ready_timeout_s)
            start = time.time() + lead_s
            for p in self.procs.values():
                p.popen.stdin.write(f"{int(start * 1e9)}\n")
                p.popen.stdin.flush()
            self._start_unix = start
        except BaseException as err:  # noqa: BLE001 - raised by start_unix / collect()
            self._error = err

    @property
    def start_unix(self) -> float:
        """Unix s of the first probes (waits until every process is ready; RunFailed if one is not)."""
        self._starter.join()
        if self._error is not None:
            raise self._error if isinstance(self._error, RunFailed) else RunFailed(str(self._error))
        return self._start_unix

    def _await_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for h, p in self.procs.items():
            ready, _, _ = select.select([p.popen.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = p.popen.stdout.readline().strip() if ready else ""
            if line != "ready":
                raise RunFailed(f"probe process on {h} not ready after {timeout_s:g} s "
                                f"(exit status {p.popen.poll()}): {self._last_error(h)}")

    def _last_error(self, host: str) -> str:
        lines = (self.workdir / f"{host}.stderr").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no message"

    @property
    def end_unix(self) -> float:
        """When the last probe's reply is due at the latest."""
        return self.start_unix + self.count / self.rate_hz + self.timeout_s

    def collect(self, timeout_s: float = 60.0) -> pd.DataFrame:
        """Waits for the last replies, stops the processes and returns :func:`account` rows."""
        try:
            time.sleep(max(0.0, min(self.end_unix - time.time(), timeout_s)))
        except RunFailed:
            self.stop()
            raise
        for p in self.procs.values():
            try:
                p.popen.stdin.write("stop\n")
                p.popen.stdin.close()
            except OSError:           # exited already: its status says why
                pass
        try:
            for h, p in self.procs.items():
                try:
                    code = p.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    raise RunFailed(f"probe process on {h} did not stop within 30 s") from None
                if code != 0:
                    raise RunFailed(f"probe process on {h} exited with {code}: {self._last_error(h)}")
            sent = pd.concat([pd.read_csv(self.workdir / f"{h}.sent.csv").assign(src=h) for h in self.procs],
                             ignore_index=True)
            replies = pd.concat([pd.read_csv(self.workdir / f"{h}.replies.csv").assign(src=h) for h in self.procs],
                                ignore_index=True)
        finally:
            self.stop()
        return account(sent, replies, self.timeout_s)

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

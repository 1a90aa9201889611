"""The replay agent: executes one rank of a plan over real TCP connections.

Runtime state is mutable and lives here; the plan (``testbed.workload.Plan``) is
frozen. Threads: one per stream of the rank (compute, comm) walking its steps in
order; one receiver per peer connection that reads, verifies and announces every
arriving transfer; one sender per peer for steps that send to several peers at once
(a step's last send is written by the stream thread itself). The main thread
watches for completion, failure and the deadline.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from testbed.agent.records import op_records, run_record, transfer_records
from testbed.net.dilation import wall_s
from testbed.power.model import stretched_s
from testbed.workload.planfile import STREAMS, RankPlan

from testbed.agent.wire import (DATA, HELLO, PROTOCOL_VERSION, Hello, Pattern, ProtocolError,
                   pack_data_header, recv_exact, recv_payload, send_payload, unpack_data_header)

EXIT_OK = 0
EXIT_CONFIG = 2  # bad arguments, plan, peers file, or a peer with another plan
EXIT_VERIFY = 3  # a transfer failed verification or broke the protocol
EXIT_TIMEOUT = 4  # --timeout-s elapsed before the plan completed
EXIT_CONNECT = 5  # could not connect, or a peer went away early

RECV_BUFFER_BYTES = 256 * 1024
POLL_S = 0.1
HANDSHAKE_S = 5.0


class AgentError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Aborted(Exception):
    """Unwinds a stream thread after another thread failed the run."""


def parse_address(text: str) -> tuple[str, int]:
    """'IP:PORT' or '[IPv6]:PORT' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ValueError(f"address {text!r} must look like IP:PORT")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ClockProfile:
    """The accelerator's clock fraction ``fraction[k]`` from wall time ``t0_unix + times_s[k]`` on."""

    t0_unix: float
    times_s: tuple[float, ...]
    fraction: tuple[float, ...]


@dataclass
class _Link:
    peer: int
    sock: socket.socket
    outbox: "queue.SimpleQueue[Any]"


class Agent:
    """Replays one rank of a plan; ``run()`` returns (exit code, result records).

    ``rank_plan`` comes from ``load_rank_plan``; ``n_ranks`` and ``seed`` from the plan
    header; ``plan_sha256`` identifies the plan file in the handshake.
    """

    def __init__(self, rank_plan: RankPlan, n_ranks: int, seed: int, plan_sha256: bytes,
                 listen: tuple[str, int], peers: dict[int, tuple[str, int]], timeout_s: float,
                 connect_timeout_s: float, start_at: float | None = None,
                 clock: ClockProfile | None = None, dilation: float = 1.0) -> None:
        """``clock``: the accelerator's clock fraction over wall time (a power model's output);
        compute phases stretch by it (None: full clock throughout). ``dilation``: wall seconds
        per emulated second (testbed/net/dilation.py); every compute phase lasts ``dilation``
        times its planned seconds before the clock fraction stretches it. Records stay in
        wall time (``summarise`` converts them)."""
        self.clock = clock
        self.dilation = dilation
        self.n_ranks = n_ranks
        self.seed = seed
        self.plan_sha256 = plan_sha256
        self.rank = rank = rank_plan.rank
        self.rp = rank_plan
        self.listen = listen
        self.peers = peers
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.start_at = start_at
        self.peer_ranks = sorted(self.rp.peers())
        missing = [p for p in self.peer_ranks if p not in peers]
        if missing:
            raise AgentError(EXIT_CONFIG, f"the peers file has no address for rank(s) {missing}")

        steps = self.rp.steps
        self.expect: dict[int, tuple[int, int]] = {t.xfer: (t.peer, t.size_bytes) for s in steps for t in s.recvs}
        self.expected_from = {p: 0 for p in self.peer_ranks}
        for peer, _ in self.expect.values():
            self.expected_from[peer] += 1
        self.patterns_out = {p: Pattern(seed, rank, p) for p in self.peer_ranks}
        self.patterns_in = {p: Pattern(seed, p, rank) for p in self.peer_ranks}
        for s in steps:  # CRCs computed now, not while the clock runs
            for t in s.sends:
                self.patterns_out[t.peer].crc(t.size_bytes)
            for t in s.recvs:
                self.patterns_in[t.peer].crc(t.size_bytes)

        self.links: dict[int, _Link] = {}
        self.arrived: dict[int, tuple[float, float]] = {}
        self.arrival_event = {x: threading.Event() for x in self.expect}
        self.step_start: list[float | None] = [None] * len(steps)
        self.step_end: list[float | None] = [None] * len(steps)
        self.step_done = [threading.Event() for _ in steps]
        self.current: dict[str, int | None] = {st: None for st in STREAMS}
        self.transfer_log: list[dict[str, Any]] = []
        self.abort = threading.Event()
        self.failure: AgentError | None = None
        self._fail_lock = threading.Lock()
        self.mono0 = time.monotonic()
        self.wall0 = time.time()
        self.connected_at: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._receivers: list[threading.Thread] = []

    # -- failure handling -------------------------------------------------------------
    def fail(self, code: int, message: str) -> None:
        with self._fail_lock:
            if self.failure is None:
                self.failure = AgentError(code, message)
        self.abort.set()

    def _wait(self, event: threading.Event) -> None:
        while not event.wait(POLL_S):
            if self.abort.is_set():
                raise _Aborted()
        if self.abort.is_set():
            raise _Aborted()

    # -- connections ------------------------------------------------------------------
    def _handshake(self, sock: socket.socket, expect_src: int | None, deadline: float) -> int:
        # bounded, so a stray idle connection cannot hold up the accept loop
        sock.settimeout(max(0.05, min(HANDSHAKE_S, deadline - time.monotonic())))
        if expect_src is not None:  # we connected: speak first
            sock.sendall(Hello(PROTOCOL_VERSION, self.rank, expect_src, self.plan_sha256).pack())
        raw = recv_exact(sock, HELLO.size)
        if not raw:
            raise ProtocolError("peer closed the connection during the handshake")
        hello = Hello.unpack(raw)
        if expect_src is None:  # answer before judging, so a mismatched peer learns why too
            sock.sendall(Hello(PROTOCOL_VERSION, self.rank, hello.src, self.plan_sha256).pack())
        if hello.version != PROTOCOL_VERSION:
            raise AgentError(EXIT_CONFIG, f"rank {hello.src} speaks protocol {hello.version}, "
                                          f"this agent {PROTOCOL_VERSION}")
        if hello.plan_sha256 != self.plan_sha256:
            raise AgentError(EXIT_CONFIG, f"rank {hello.src} replays another plan (sha256 "
                                          f"{hello.plan_sha256.hex()[:12]} vs ours {self.plan_sha256.hex()[:12]})")
        if hello.dst != self.rank:
            raise AgentError(EXIT_CONFIG, f"rank {hello.src} expected rank {hello.dst} at this address "
                                          f"{self.listen[0]}:{self.listen[1]}; check the peers file")
        if expect_src is not None and hello.src != expect_src:
            raise AgentError(EXIT_CONFIG, f"the agent at {self.peers[expect_src]} is rank {hello.src}, "
                                          f"not rank {expect_src}; check the peers file")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return hello.src

    def _accept_loop(self, server: socket.socket, expected: set[int], deadline: float) -> None:
        server.settimeout(POLL_S)
        while expected - set(self.links) and not self.abort.is_set() and time.monotonic() < deadline:
            try:
                sock, _ = server.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError as exc:
                self.fail(EXIT_CONNECT, f"accepting connections failed: {exc}")
                return
            try:
                src = self._handshake(sock, None, deadline)
            except AgentError as exc:
                sock.close()
                self.fail(exc.code, str(exc))
                return
            except (ProtocolError, OSError) as exc:
                sock.close()  # not one of ours (or gone): keep listening
                print(f"testbed.agent rank {self.rank}: ignored a connection: {exc}", file=sys.stderr)
                continue
            if src not in expected or src in self.links:
                sock.close()
                self.fail(EXIT_CONFIG, f"unexpected connection from rank {src} (expected ranks {sorted(expected)})")
                return
            self.links[src] = _Link(src, sock, queue.SimpleQueue())

    def _connect_all(self, deadline: float) -> None:
        family = socket.AF_INET6 if ":" in self.listen[0] else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(self.listen)
            server.listen(max(16, len(self.peer_ranks)))
        except OSError as exc:
            server.close()
            raise AgentError(EXIT_CONNECT, f"cannot listen on {self.listen[0]}:{self.listen[1]}: {exc}") from exc
        accept_from = {p for p in self.peer_ranks if p > self.rank}
        acceptor = threading.Thread(target=self._accept_loop, args=(server, accept_from, deadline),
                                    name="accept", daemon=True)
        acceptor.start()
        try:
            for peer in (p for p in self.peer_ranks if p < self.rank):
                self.links[peer] = _Link(peer, self._connect(peer, deadline), queue.SimpleQueue())
            acceptor.join(max(0.0, deadline - time.monotonic()) + POLL_S)
        finally:
            server.close()
        if self.failure is not None:
            raise self.failure
        missing = sorted(set(self.peer_ranks) - set(self.links))
        if missing:
            raise AgentError(EXIT_CONNECT, f"rank(s) {missing} did not connect within "
                                           f"{self.connect_timeout_s:g} s (are their agents running?)")

    def _connect(self, peer: int, deadline: float) -> socket.socket:
        backoff, last_error = 0.01, "no attempt"
        while time.monotonic() < deadline and not self.abort.is_set():
            try:
                sock = socket.create_connection(self.peers[peer], timeout=max(0.05, deadline - time.monotonic()))
            except OSError as exc:
                last_error = str(exc)
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, 0.25)
                continue
            try:
                self._handshake(sock, peer, deadline)
                return sock
            except (ProtocolError, OSError) as exc:
                sock.close()
                last_error = f"handshake failed: {exc}"
            except AgentError:
                sock.close()
                raise
        if self.failure is not None:
            raise self.failure
        host, port = self.peers[peer]
        raise AgentError(EXIT_CONNECT, f"could not connect to rank {peer} at {host}:{port} within "
                                       f"{self.connect_timeout_s:g} s (last error: {last_error})")

    # -- data path --------------------------------------------------------------------
    def _receive_loop(self, link: _Link) -> None:
        peer, sock = link.peer, link.sock
        buffer = memoryview(bytearray(RECV_BUFFER_BYTES))
        pattern = self.patterns_in[peer]
        remaining = self.expected_from[peer]
        try:
            while True:
                raw = recv_exact(sock, DATA.size)
                if not raw:
                    if remaining:
                        self.fail(EXIT_CONNECT, f"rank {peer} closed the connection with {remaining} "
                                                f"transfer(s) to rank {self.rank} still expected")
                    return
                start = time.monotonic()
                src, dst, xfer, length, header_crc = unpack_data_header(raw)
                if (src, dst) != (peer, self.rank):
                    raise ProtocolError(f"header names rank {src} -> {dst} on the connection from rank {peer}")
                planned = self.expect.get(xfer)
                if planned is None or planned[0] != peer or xfer in self.arrived:
                    raise ProtocolError(f"rank {peer} sent transfer {xfer}, which the plan does not expect "
                                        f"from it (or which already arrived)")
                if length != planned[1]:
                    raise ProtocolError(f"transfer {xfer} from rank {peer} announces {length} bytes, "
                                        f"the plan says {planned[1]}")
                crc = recv_payload(sock, length, buffer)
                end = time.monotonic()
                want = pattern.crc(length)
                if crc != want or header_crc != want:
                    raise ProtocolError(
                        f"transfer {xfer} from rank {peer} failed verification: the {length} received bytes "
                        f"have CRC-32 {crc:#010x}, the expected payload {want:#010x} (header says "
                        f"{header_crc:#010x}); data was corrupted or is not what the plan's seed produces"
                    )
                self.arrived[xfer] = (start, end)
                self.transfer_log.append({"direction": "recv", "peer": peer, "xfer": xfer,
                                          "size_bytes": length, "start": start, "end": end})
                self.arrival_event[xfer].set()
                remaining -= 1
        except ProtocolError as exc:
            self.fail(EXIT_VERIFY, str(exc))
        except OSError as exc:
            if not self.abort.is_set():
                self.fail(EXIT_CONNECT, f"connection with rank {peer} failed while receiving: {exc}")

    def _send(self, peer: int, xfer: int, length: int) -> None:
        pattern = self.patterns_out[peer]
        header = pack_data_header(self.rank, peer, xfer, length, pattern.crc(length))
        start = time.monotonic()
        try:
            send_payload(self.links[peer].sock, header, pattern, length)
        except OSError as exc:
            self.fail(EXIT_CONNECT, f"connection with rank {peer} failed while sending transfer {xfer}: {exc}")
            raise _Aborted() from exc
        self.transfer_log.append({"direction": "send", "peer": peer, "xfer": xfer, "size_bytes": length,
                                  "start": start, "end": time.monotonic()})

    def _send_loop(self, link: _Link) -> None:
        while True:
            item = link.outbox.get()
            if item is None:
                return
            xfer, length, done = item
            try:
                self._send(link.peer, xfer, length)
            except _Aborted:
                return
            done.set()

    def _compute_wall_s(self, compute_s: float) -> float:
        """Wall time of ``compute_s`` (emulated) seconds of full-clock compute starting now."""
        compute_s = wall_s(compute_s, self.dilation)
        if self.clock is None:
            return compute_s
        return stretched_s(compute_s, time.time() - self.clock.t0_unix, self.clock.times_s, self.clock.fraction,
                           max_s=self.timeout_s)

    def _run_stream(self, stream: str) -> None:
        steps = self.rp.steps
        try:
            for step in (s for s in steps if s.stream == stream):
                for dep in step.deps:
                    self._wait(self.step_done[dep])
                self.current[stream] = step.id
                self.step_start[step.id] = time.monotonic()
                if step.compute_s and self.abort.wait(self._compute_wall_s(step.compute_s)):
                    raise _Aborted()
                pending = []
                for t in step.sends[:-1]:
                    done = threading.Event()
                    self.links[t.peer].outbox.put((t.xfer, t.size_bytes, done))
                    pending.append(done)
                if step.sends:
                    last = step.sends[-1]
                    self._send(last.peer, last.xfer, last.size_bytes)
                for t in step.recvs:
                    self._wait(self.arrival_event[t.xfer])
                for done in pending:
                    self._wait(done)
                self.step_end[step.id] = time.monotonic()
                self.step_done[step.id].set()
            self.current[stream] = None
        except _Aborted:
            return
        except Exception as exc:  # a bug must stop the run loudly, not hang it
            self.fail(EXIT_VERIFY, f"internal error in the {stream} stream: {exc!r}")

    def _stuck_report(self) -> str:
        parts = []
        for stream, sid in self.current.items():
            if sid is None or self.step_done[sid].is_set():
                continue
            step = self.rp.steps[sid]
            op = self.rp.ops[step.op]
            waits = [f"transfer {t.xfer} from rank {t.peer}" for t in step.recvs if t.xfer not in self.arrived]
            waits += [f"step {d}" for d in step.deps if not self.step_done[d].is_set()]
            what = f"{op.type} {getattr(op, 'kind', '')} {op.name!r}".replace("  ", " ")
            parts.append(f"{stream} stream in step {sid} (op {step.op}: {what})"
                         + (f" waiting for {', '.join(waits[:4])}" if waits else ""))
        for stream in STREAMS:
            if self.current[stream] is None and not self._stream_finished(stream):
                first = next(s for s in self.rp.steps if s.stream == stream and not self.step_done[s.id].is_set())
                parts.append(f"{stream} stream waiting to start step {first.id}")
        return "; ".join(parts) or "no step running"

    def _stream_finished(self, stream: str) -> bool:
        return all(self.step_done[s.id].is_set() for s in self.rp.steps if s.stream == stream)

    # -- main -------------------------------------------------------------------------
    def run(self) -> tuple[int, list[dict[str, Any]]]:
        deadline = self.mono0 + self.timeout_s
        try:
            self._connect_all(min(deadline, self.mono0 + self.connect_timeout_s))
        except AgentError as exc:
            self.fail(exc.code, str(exc))
            self._close_all()
            return self._finish()
        self.connected_at = time.monotonic()
        if self.start_at is not None:
            delay = self.start_at - time.time()
            if delay > 0 and self.abort.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                self._close_all()
                return self._finish()
        self.started_at = time.monotonic()
        self._receivers = [threading.Thread(target=self._receive_loop, args=(link,), daemon=True)
                           for link in self.links.values()]
        threads = self._receivers + [threading.Thread(target=self._send_loop, args=(link,), daemon=True, name=f"send{p}")
                    for p, link in self.links.items()]
        streams = [threading.Thread(target=self._run_stream, args=(st,), daemon=True, name=st) for st in STREAMS]
        for t in threads + streams:
            t.start()
        while not self.abort.is_set():
            if all(not t.is_alive() for t in streams):
                break
            now = time.monotonic()
            if now >= deadline:
                self.fail(EXIT_TIMEOUT, f"timed out after {self.timeout_s:g} s (--timeout-s) with "
                                        f"{sum(not e.is_set() for e in self.step_done)} of {len(self.step_done)} "
                                        f"steps left: {self._stuck_report()}")
                break
            self.abort.wait(min(POLL_S, deadline - now))
        self.finished_at = time.monotonic()
        if self.failure is None:
            self._drain(deadline)
        self._close_all()
        return self._finish()

    def _drain(self, deadline: float) -> None:
        """Tell peers we are done, and wait (bounded) until they are done with us too."""
        for link in self.links.values():
            link.outbox.put(None)
            try:
                link.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        for thread in self._receivers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _close_all(self) -> None:
        for link in self.links.values():
            link.outbox.put(None)
            try:
                link.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            link.sock.close()

    # -- results ----------------------------------------------------------------------
    def wall(self, t_mono: float) -> float:
        return self.wall0 + (t_mono - self.mono0)

    def _finish(self) -> tuple[int, list[dict[str, Any]]]:
        code = EXIT_OK if self.failure is None else self.failure.code
        return code, [run_record(self, code, ok=code == EXIT_OK)] + op_records(self) + transfer_records(self)

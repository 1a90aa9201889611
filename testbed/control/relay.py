"""The control-channel relay: OpenFlow between the switches and a distant controller.

When the controller is not local (``[controller] location``, see
:mod:`testbed.control.placement`), every switch connects to its own Unix socket of the
relay (``sw<node>.sock`` in a folder inside the controller's root-only channel folder,
so only the run's own parties reach it), and the relay connects each to the
controller's ``of.sock``. Bytes are forwarded in both directions unchanged (the relay
never parses OpenFlow) after being held for the switch's current one-way control delay:
a chunk read at wall time t leaves at ``t + delay``, and never before the chunk ahead of
it in the same direction (order is preserved even when the delay shrinks).

The delays are set per schedule step by the clock (:meth:`ControlRelay.set_delays`). A
switch out of reach (``inf``) gets nothing and sends nothing: what is read is held until
the switch is reachable again, then leaves ``delay`` after that moment. Meanwhile the
switch keeps the rules it has (``fail_mode=secure``); if the controller gives up on the
session (unanswered echoes), the close is held like any byte, the switch reconnects once
the relay closes its side, and the controller reinstalls its rules.

One thread runs an asyncio loop with every connection; the testbed's threads only call
:meth:`set_delays`, :meth:`check_alive` and :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import shutil
import socket
import threading
from collections import deque
from pathlib import Path
from typing import Iterable, Mapping

from testbed.errors import RunFailed

READ_BYTES = 1 << 16
_EOF = None     # the end of a stream, queued like data


def socket_name(node: int) -> str:
    """The relay socket of switch ``node`` inside the relay's folder."""
    return f"sw{node}.sock"


def _enough_descriptors(n: int) -> None:
    """Raises this process's open-file limit towards ``n`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n:
        want = n if hard == resource.RLIM_INFINITY else min(n, hard)
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def _send_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes) -> None:
    """Sends all of ``data`` on the non-blocking ``sock`` without SIGPIPE (in a process that
    runs with SIGPIPE's default action, a peer that has gone would end it at once): a closed
    peer raises ``BrokenPipeError`` here instead."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view, socket.MSG_NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            ready = loop.create_future()
            loop.add_writer(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(sock.fileno())
            continue
        view = view[n:]


class _Pipe:
    """One direction of one connection: chunks with their release times (loop seconds), in order."""

    def __init__(self, relay: "ControlRelay", node: int, sock: socket.socket):
        self.relay, self.node, self.sock = relay, node, sock
        self.queue: deque[list] = deque()     # [release time or None (out of reach), bytes]
        self.last_release = 0.0
        self.wake = asyncio.Event()

    def push(self, data: bytes | None) -> None:
        d = self.relay.delay_s.get(self.node, 0.0)
        release = None if math.isinf(d) else max(self.relay.loop.time() + d, self.last_release)
        if release is not None:
            self.last_release = release
        self.queue.append([release, data])
        self.wake.set()

    def reachable(self, d: float) -> None:
        """The switch is reachable again with delay ``d``: held chunks leave ``d`` from now."""
        now = self.relay.loop.time()
        for item in self.queue:
            if item[0] is None:
                item[0] = self.last_release = max(now + d, self.last_release)
        self.wake.set()

    async def run(self) -> None:
        """Writes each chunk at its release time; returns after the end of the stream."""
        loop = self.relay.loop
        while True:
            while not self.queue or self.queue[0][0] is None:
                self.wake.clear()
                await self.wake.wait()
            release, data = self.queue[0]
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.queue.popleft()
            if data is _EOF:
                return
            await _send_all(loop, self.sock, data)
            self.relay.forwarded_bytes += len(data)


class ControlRelay:
    """Delays the OpenFlow connections of ``node_ids`` to the controller at ``controller_socket``.

    ``with ControlRelay(...) as relay:`` or :meth:`start` / :meth:`stop`. Until the first
    :meth:`set_delays` every delay is 0.
    """

    def __init__(self, controller_socket: Path, folder: Path, node_ids: Iterable[int]):
        self.controller_socket = Path(controller_socket)
        self.folder = Path(folder)
        self.node_ids = sorted(int(n) for n in node_ids)
        self.delay_s: dict[int, float] = {n: 0.0 for n in self.node_ids}   # owned by the loop
        self.forwarded_bytes = 0
        self.failed: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pipes: dict[int, list[_Pipe]] = {n: [] for n in self.node_ids}
        self._servers: list[socket.socket] = []
        self._accepting: list[asyncio.Future] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def socket_path(self, node: int) -> Path:
        return self.folder / socket_name(node)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "ControlRelay":
        _enough_descriptors(3 * len(self.node_ids) + 256)   # a listener and two ends per switch
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(mode=0o700)
        os.chmod(self.folder, 0o700)
        self._thread = threading.Thread(target=self._main, name="control-relay", daemon=True)
        self._thread.start()
        self._ready.wait(30.0)
        if self.failed:
            raise RunFailed(f"the control relay did not start: {self.failed}")
        return self

    def __enter__(self) -> "ControlRelay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(10.0)
        shutil.rmtree(self.folder, ignore_errors=True)

    def check_alive(self) -> None:
        """Raises :class:`RunFailed` if the relay's loop ended with an error."""
        if self.failed:
            raise RunFailed(f"the control relay stopped: {self.failed}")

    # ------------------------------------------------------------ delays
    def set_delays(self, delay_s: Mapping[int, float]) -> None:
        """New one-way delays [s] per switch node (``inf``: out of reach); thread-safe."""
        if self.loop is None:
            self.delay_s.update({int(n): float(d) for n, d in delay_s.items()})
            return
        self.loop.call_soon_threadsafe(self._apply, {int(n): float(d) for n, d in delay_s.items()})

    def _apply(self, delay_s: dict[int, float]) -> None:
        for node, d in delay_s.items():
            was = self.delay_s.get(node, 0.0)
            self.delay_s[node] = d
            if math.isinf(was) and not math.isinf(d):
                for pipe in self._pipes.get(node, ()):
                    pipe.reachable(d)

    # ------------------------------------------------------------ the loop
    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported through check_alive
            self.failed = f"{type(e).__name__}: {e}"
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        for node in self.node_ids:
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(str(self.socket_path(node)))
            srv.listen(8)
            srv.setblocking(False)
            self._servers.append(srv)
            self._accepting.append(asyncio.ensure_future(self._accept(node, srv)))
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            for t in list(self._accepting):
                t.cancel()
            for srv in self._servers:
                srv.close()

    async def _accept(self, node: int, srv: socket.socket) -> None:
        while True:
            sw, _ = await self.loop.sock_accept(srv)
            sw.setblocking(False)
            task = asyncio.ensure_future(self._connection(node, sw))
            self._accepting.append(task)         # held: the loop keeps only weak references
            task.add_done_callback(self._accepting.remove)

    async def _connection(self, node: int, sw: socket.socket) -> None:
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.setblocking(False)
        try:
            await self.loop.sock_connect(ctl, str(self.controller_socket))
        except OSError:
            sw.close()          # the switch retries (OVS backs off and reconnects)
            ctl.close()
            return
        to_ctl, to_sw = _Pipe(self, node, ctl), _Pipe(self, node, sw)
        self._pipes[node] += [to_ctl, to_sw]
        tasks = [asyncio.ensure_future(t) for t in (self._read(sw, to_ctl), self._read(ctl, to_sw),
                                                    to_ctl.run(), to_sw.run())]
        try:
            # Either side's end (delivered after the held bytes ahead of it) ends the connection.
            done, _ = await asyncio.wait(tasks[2:], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                e = t.exception()
                if e is not None and not isinstance(e, (ConnectionError, OSError)):
                    self.failed = f"switch {node}: {type(e).__name__}: {e}"
        finally:
            for t in tasks:
                t.cancel()
            for sock in (sw, ctl):
                sock.close()
            for p in (to_ctl, to_sw):
                self._pipes[node].remove(p)

    async def _read(self, sock: socket.socket, pipe: _Pipe) -> None:
        try:
            while True:
                data = await self.loop.sock_recv(sock, READ_BYTES)
                pipe.push(data or _EOF)
                if not data:
                    return
        except (ConnectionError, OSError):
            pipe.push(_EOF)

"""The link-state feed: how the testbed tells the controller what the network is.

Transport: one stream connection from the testbed to the controller over a Unix socket
in a directory only root may enter (the testbed makes it; see testbed/control/process.py),
so no other local user can connect. (A TCP port on 127.0.0.1 is still accepted by both ends
for tools, never used by the testbed.) Messages are JSON objects, one per line,
in both directions. The controller answers every request, so the testbed knows when the
controller's view (and the flow tables) caught up with the data plane.

Testbed -> controller
  {"type": "topology", "switches": [[node, dpid], ...], "ports": [[switch, neighbour, port], ...],
   "hosts": [{"ip": ..., "switch": ..., "port": ..., "mac": ...}, ...]}
      Static facts of the built network (port numbers are fixed by the testbed).
  {"type": "state", "step": k, "t_s": t, "links": [{"a", "b", "delay_s", "capacity_bps", "up"}, ...],
   "future": [{"t_s": t2, "links": [...]}, ...], "out_of_reach": [node, ...]}
      Link state at schedule step k (after the data plane applied it), with upcoming
      steps for predictive algorithms (may be empty). ``out_of_reach`` (optional, with a
      distant controller): switches with no control path at this step; their messages
      wait in the control relay, and no barrier reply is awaited from them.
  {"type": "status"}
      Asks which switches are connected and whether rules are installed.

Controller -> testbed
  {"type": "applied", "step": k, "compute_s": ..., "flow_mods": n, "group_mods": n,
   "rules_per_switch": {node: count}, "missing_switches": [...]}
      Sent once the step's flow mods were sent and confirmed by barrier replies from
      every connected switch in reach (or the barrier timed out: "barrier_timeout": true).
  {"type": "status", "connected": [node, ...], "installed": bool}
  {"type": "error", "message": ...}
      The controller could not handle a message; the testbed stops the run.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

LISTEN_HOST = "127.0.0.1"


def encode(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


def decode(line: bytes | str) -> dict[str, Any]:
    msg = json.loads(line)
    if not isinstance(msg, dict) or "type" not in msg:
        raise ValueError(f"feed message without a type: {str(line)[:80]!r}")
    return msg


class FeedError(RuntimeError):
    """The controller did not answer, answered with an error, or went away."""


class FeedClient:
    """The testbed's end of the feed (blocking, one request at a time)."""

    def __init__(self, address: str | int, connect_timeout_s: float = 20.0, alive=lambda: True):
        """``address``: the Unix socket's path, or a TCP port on 127.0.0.1."""
        unix = isinstance(address, str)
        where = address if unix else f"{LISTEN_HOST}:{address}"
        deadline = time.monotonic() + connect_timeout_s
        last: OSError | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise FeedError("the controller process exited before accepting the feed connection")
            try:
                if unix:
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.settimeout(2.0)
                    try:
                        self.sock.connect(address)
                    except OSError:
                        self.sock.close()
                        raise
                else:
                    self.sock = socket.create_connection((LISTEN_HOST, address), timeout=2.0)
                break
            except OSError as e:
                last = e
                time.sleep(0.1)
        else:
            raise FeedError(f"the controller did not open its feed at {where} within "
                            f"{connect_timeout_s:g} s ({last})")
        if not unix:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def request(self, msg: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        self.sock.settimeout(timeout_s)
        try:
            self.sock.sendall(encode(msg))
            line = self.reader.readline()
        except socket.timeout:
            raise FeedError(f"the controller did not answer a {msg.get('type')!r} message "
                            f"within {timeout_s:g} s") from None
        except OSError as e:
            raise FeedError(f"controller feed: {type(e).__name__}: {e}") from None
        if not line:
            raise FeedError("the controller closed the feed connection (did it crash? see its log)")
        reply = decode(line)
        if reply["type"] == "error":
            raise FeedError(f"controller error: {reply.get('message')}")
        return reply

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

"""The os-ken app as a real process, driven by a minimal OpenFlow 1.3 switch over TCP on
127.0.0.1 (no root, no Open vSwitch): a handler exception stops the controller with a
non-zero exit status and the traceback in its log; without one it keeps running."""

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from os_ken.ofproto import ofproto_v1_3 as ofp

REPO = Path(__file__).resolve().parents[1]
EXIT_HANDLER_FAILED = 70   # controllers.app.EXIT_HANDLER_FAILED (not imported: that loads os-ken's hub here)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_controller(log_path, prelude=""):
    """``python -c`` that imports the app, runs ``prelude``, then the app's own main()."""
    argv = ["--of-port", str(free_port()), "--feed-port", str(free_port()), "--algorithm", "min_delay",
            "--poll-interval-s", "0"]
    code = f"import sys\nimport controllers.app as app\n{prelude}\nsys.exit(app.main({argv!r}))\n"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "EVENTLET_NO_GREENDNS": "yes"})
    log.close()
    return proc, int(argv[1])


class FakeSwitch:
    """Just enough of an OpenFlow 1.3 switch to be handed to the app's handlers."""

    def __init__(self, port, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout_s)

    def send(self, msg_type, xid, body=b""):
        self.sock.sendall(struct.pack(ofp.OFP_HEADER_PACK_STR, ofp.OFP_VERSION, msg_type,
                                      ofp.OFP_HEADER_SIZE + len(body), xid) + body)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("controller closed the connection")
            buf += chunk
        return buf

    def receive(self):
        """(type, xid, body) of the next message; answers echo requests on the way."""
        while True:
            _version, msg_type, length, xid = struct.unpack(ofp.OFP_HEADER_PACK_STR, self._read(ofp.OFP_HEADER_SIZE))
            body = self._read(length - ofp.OFP_HEADER_SIZE)
            if msg_type == ofp.OFPT_ECHO_REQUEST:
                self.send(ofp.OFPT_ECHO_REPLY, xid, body)
                continue
            return msg_type, xid, body

    def handshake(self, datapath_id=1):
        """Hello both ways, then the features reply that makes os-ken raise EventOFPSwitchFeatures."""
        self.send(ofp.OFPT_HELLO, 1)
        while True:
            msg_type, xid, _ = self.receive()
            if msg_type == ofp.OFPT_FEATURES_REQUEST:
                break
        self.send(ofp.OFPT_FEATURES_REPLY, xid,
                  struct.pack(ofp.OFP_SWITCH_FEATURES_PACK_STR, datapath_id, 0, 1, 0, 0, 0))

    def close(self):
        self.sock.close()


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_working_handler_clears_the_switch_and_the_controller_keeps_running(tmp_path):
    proc, of_port = start_controller(tmp_path / "controller.log")
    try:
        switch = FakeSwitch(of_port)
        switch.handshake()
        seen = set()
        while seen != {ofp.OFPT_FLOW_MOD, ofp.OFPT_GROUP_MOD}:
            msg_type, _, _ = switch.receive()
            if msg_type in (ofp.OFPT_FLOW_MOD, ofp.OFPT_GROUP_MOD):
                seen.add(msg_type)
        time.sleep(1.0)
        assert proc.poll() is None, (tmp_path / "controller.log").read_text()
        switch.close()
    finally:
        stop(proc)


def test_a_handler_exception_stops_the_controller_with_a_nonzero_exit(tmp_path):
    log = tmp_path / "controller.log"
    # The switch-features handler fails as a bug would: the message module raises.
    prelude = ("def broken(dp):\n    raise ZeroDivisionError('planted failure')\n"
               "app.ofmsg.clear_switch = broken")
    proc, of_port = start_controller(log, prelude)
    try:
        switch = FakeSwitch(of_port)
        switch.handshake()
        status = proc.wait(timeout=20)
    finally:
        stop(proc)
    text = log.read_text()
    assert status == EXIT_HANDLER_FAILED, text
    assert "Traceback" in text and "ZeroDivisionError: planted failure" in text
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert "controller stopped: handler _switch_features: ZeroDivisionError: planted failure" in last


def test_barrier_replies_are_awaited_within_one_timeout_in_all():
    """Four barriers, one answered: the wait ends after one BARRIER_TIMEOUT_S, not one per
    unanswered switch (switches out of a distant controller's reach answer late)."""
    code = ("import time\nimport controllers.app as app\nfrom os_ken.lib import hub\n"
            "app.BARRIER_TIMEOUT_S = 0.4\nevs = [hub.Event() for _ in range(4)]\nevs[0].set()\n"
            "t0 = time.monotonic()\nok = app.RoutingApp._wait_all(evs)\n"
            "print(ok, time.monotonic() - t0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "EVENTLET_NO_GREENDNS": "yes"})
    ok, elapsed_s = r.stdout.split()
    assert ok == "False", r.stdout + r.stderr
    assert 0.35 < float(elapsed_s) < 0.9, elapsed_s      # 3 x 0.4 s if each had its own timeout

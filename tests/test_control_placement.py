"""The control channel's delays (testbed/control/placement.py) against networkx, and the
relay (testbed/control/relay.py) on plain Unix sockets: bytes held for the delay, in order,
and held while out of reach."""

import socket
import threading
import time

import networkx as nx
import numpy as np
import pytest

from testbed.control.placement import ControlDelays, control_delays_s, location_node, parse_location
from testbed.control.relay import ControlRelay


def random_steps(seed, n_nodes=30, n_links=60, n_steps=6):
    rng = np.random.default_rng(seed)
    pairs = set()
    while len(pairs) < n_links:
        a, b = rng.integers(0, n_nodes, 2)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    pairs = np.array(sorted(pairs))
    delay = rng.uniform(1e-3, 20e-3, (n_steps, n_links))
    up = rng.random((n_steps, n_links)) < 0.7
    return pairs[:, 0], pairs[:, 1], delay, up


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delays_equal_networkx_shortest_paths_over_up_links(seed):
    a, b, delay, up = random_steps(seed)
    n, source = 30, 3
    got = control_delays_s(n, a, b, delay, up, source)
    assert got.shape == (delay.shape[0], n)
    for k in range(delay.shape[0]):
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_weighted_edges_from((int(x), int(y), float(d)) for x, y, d, u in zip(a, b, delay[k], up[k]) if u)
        want = nx.single_source_dijkstra_path_length(g, source)
        for node in range(n):
            if node in want:
                assert got[k, node] == pytest.approx(want[node], abs=1e-12)
            else:
                assert np.isinf(got[k, node])      # no path at this step: out of reach
    assert np.isinf(got).any() and np.isfinite(got).sum() > n   # the seeds have both kinds


def test_several_sources_give_the_delay_from_the_nearest():
    a, b, delay, up = random_steps(5)
    sources = [3, 17, 22]
    got = control_delays_s(30, a, b, delay, up, sources)
    for k in range(delay.shape[0]):
        g = nx.Graph()
        g.add_nodes_from(range(30))
        g.add_weighted_edges_from((int(x), int(y), float(d)) for x, y, d, u in zip(a, b, delay[k], up[k]) if u)
        want = nx.multi_source_dijkstra_path_length(g, sources)
        assert np.allclose([want.get(node, np.inf) for node in range(30)], got[k], atol=1e-12)
    assert np.all(got[:, sources] == 0)


def test_control_delays_per_switch_and_out_of_reach():
    # chain 0-1-2-3, link 2-3 down at step 1
    up = np.array([[True, True, True], [True, True, False]])
    cd = ControlDelays.from_links(0, [0, 1, 2, 3], [0, 1, 2], [1, 2, 3], np.full((2, 3), 0.01), up)
    assert cd.at(0) == pytest.approx({0: 0.0, 1: 0.01, 2: 0.02, 3: 0.03})
    assert np.isfinite(cd.delay_s[0]).all() and np.isinf(cd.delay_s[1]).sum() == 1 and np.isinf(cd.at(1)[3])


def test_locations_are_checked_against_the_topology():
    ground = ("svalbard", "troll")
    assert parse_location("local", ground, 10).is_local
    loc = parse_location("ground:troll", ground, 10)
    assert location_node(loc, {"svalbard": 10, "troll": 11}) == (11,)
    both = parse_location("ground:svalbard,troll", ground, 10)
    assert location_node(both, {"svalbard": 10, "troll": 11}) == (10, 11)
    assert location_node(parse_location("satellite:7", ground, 10), {}) == (7,)
    for bad, words in [("ground:nowhere", "no ground station 'nowhere'"), ("satellite:10", "0 .. 9"),
                       ("moon", "unknown controller location"), ("satellite:x", "node id"),
                       ("ground:troll,troll", "named twice"), ("ground:troll,x", "no ground station 'x'")]:
        with pytest.raises(ValueError, match=words):
            parse_location(bad, ground, 10)


class EchoController:
    """A Unix-socket server that answers every chunk at once, recording when it arrived."""

    def __init__(self, path):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen()
        self.arrivals = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.srv.accept()
        while True:
            data = conn.recv(4096)
            if not data:
                return
            self.arrivals.append((time.monotonic(), data))
            conn.sendall(data)


def exchange(sock, payload, n):
    t0 = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < n:
        got += sock.recv(4096)
    return time.monotonic() - t0, got


def test_relay_holds_each_direction_for_the_delay_and_while_out_of_reach(tmp_path):
    ctl = EchoController(tmp_path / "of.sock")
    with ControlRelay(tmp_path / "of.sock", tmp_path / "relay", [5]) as relay:
        # only the run's own parties: the folder is root's alone (it lives inside the
        # controller's root-only channel folder in a run)
        assert (relay.folder.stat().st_mode & 0o777) == 0o700
        relay.set_delays({5: 0.1})
        sw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sw.connect(str(relay.socket_path(5)))
        rtt_s, got = exchange(sw, b"hello", 5)
        # 0.1 s each way: the reply cannot be back before 0.2 s; 1 s of slack for a loaded machine
        assert got == b"hello" and 0.2 <= rtt_s < 1.2, rtt_s
        relay.set_delays({5: float("inf")})
        time.sleep(0.05)
        t_sent = time.monotonic()
        sw.sendall(b"a")
        sw.sendall(b"b")
        time.sleep(0.5)
        assert len(ctl.arrivals) == 1          # nothing got through while out of reach
        t_back = time.monotonic()
        relay.set_delays({5: 0.05})
        got = b""
        while len(got) < 2:
            got += sw.recv(4096)
        assert got == b"ab"                     # in order
        first_after = ctl.arrivals[1][0]
        assert first_after >= t_back + 0.05 and first_after - t_sent >= 0.55
        sw.close()
        relay.check_alive()


def test_spec_locations_spec_wide_and_per_algorithm(tmp_path):
    from testbed.spec import load_spec
    spec = load_spec({"experiment": {"name": "p"}, "constellation": {"preset": "test4x4"},
                      "ground": {"stations": [{"name": "svalbard", "lat_deg": 78.23, "lon_deg": 15.39}]},
                      "controller": {"location": "ground:svalbard"},
                      "algorithms": [{"name": "min_delay"},
                                     {"name": "min_delay", "label": "orbit", "controller_location": "satellite:5"}]},
                     base_dir=tmp_path)
    assert [spec.location_of(a) for a in spec.algorithms] == ["ground:svalbard", "satellite:5"]
    default = load_spec({"experiment": {"name": "p"}, "constellation": {"preset": "test4x4"},
                         "algorithms": [{"name": "min_hop"}]},
                        base_dir=tmp_path)
    assert default.location_of(default.algorithms[0]) == "local"


SIGPIPE_CHILD = r"""
import signal, socket, sys, time
from pathlib import Path
from testbed.control.relay import ControlRelay
signal.signal(signal.SIGPIPE, signal.SIG_DFL)      # as the testbed CLI has it
d = Path(sys.argv[1])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(str(d / "of.sock"))
srv.listen()
with ControlRelay(d / "of.sock", d / "relay", [1]) as relay:
    relay.set_delays({1: 0.2})
    sw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sw.connect(str(relay.socket_path(1)))
    conn, _ = srv.accept()
    conn.sendall(b"x" * 1000)      # held for 0.2 s, then written to a switch that is gone by then
    time.sleep(0.05)
    sw.close()
    time.sleep(0.6)
    relay.check_alive()
print("alive")
"""


def test_a_switch_that_goes_away_does_not_kill_the_process_with_sigpipe(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", SIGPIPE_CHILD, str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "alive", (r.returncode, r.stderr[-500:])

"""Agents fail loudly: corrupted bytes, protocol violations, stuck peers, bad inputs."""

import hashlib
import json
import socket
import subprocess
import threading
import time

import pytest

from testbed.agent import EXIT_CONFIG, EXIT_CONNECT, EXIT_TIMEOUT, EXIT_VERIFY
from testbed.agent.local import agent_command, free_ports
from testbed.agent.wire import DATA, HELLO, PROTOCOL_VERSION, Hello, Pattern, pack_data_header, recv_exact
from testbed.workload import Collective, Workload, expand, save_plan
from testbed.workload.summary import read_results

SIZE = 256 * 1024


def two_rank_plan(tmp_path, seed=0, name="plan.json"):
    ops = [[Collective(kind="all_reduce", size_bytes=SIZE, group=(0, 1))] for _ in range(2)]
    plan = expand(Workload(2, ops), seed=seed)
    path = tmp_path / name
    save_plan(plan, path)
    return plan, path


def start_agent(tmp_path, plan_path, rank, listen_port, peers, timeout_s=10.0, extra=()):
    peers_path = tmp_path / f"peers{rank}.json"
    peers_path.write_text(json.dumps({str(r): f"127.0.0.1:{p}" for r, p in peers.items()}))
    out = tmp_path / f"rank{rank}.jsonl"
    cmd = agent_command(plan_path, rank, f"127.0.0.1:{listen_port}", peers_path, out, timeout_s, extra)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), out


def finish(proc, timeout=20):
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def connect_as(port, src, dst, digest, deadline_s=5.0):
    """A rogue rank: connect to a real agent and complete the handshake."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)
    sock.sendall(Hello(PROTOCOL_VERSION, src, dst, digest).pack())
    reply = Hello.unpack(recv_exact(sock, HELLO.size))
    assert (reply.src, reply.dst) == (dst, src)
    return sock


class FlippingProxy:
    """Forwards one TCP connection, flipping one byte of the client->server stream."""

    def __init__(self, target_port, flip_at):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.target_port, self.flip_at, self.flipped = target_port, flip_at, False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        client, _ = self.server.accept()
        for _ in range(500):  # the real agent may not listen yet
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                break
            except OSError:
                time.sleep(0.01)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, src, dst, flip):
        offset = 0
        try:
            while True:
                data = bytearray(src.recv(65536))
                if not data:
                    break
                if flip and offset <= self.flip_at < offset + len(data):
                    data[self.flip_at - offset] ^= 0x01
                    self.flipped = True
                offset += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_a_flipped_bit_between_two_agents_fails_the_run(tmp_path):
    plan, plan_path = two_rank_plan(tmp_path)
    port0, port1 = free_ports(2)
    # one bit of the first payload that rank 1 sends to rank 0 is flipped on the way
    proxy = FlippingProxy(port0, flip_at=HELLO.size + DATA.size + 1000)
    agent0, out0 = start_agent(tmp_path, plan_path, 0, port0, {1: port1})
    agent1, _ = start_agent(tmp_path, plan_path, 1, port1, {0: proxy.port})
    code0, err0 = finish(agent0)
    code1, err1 = finish(agent1)
    assert proxy.flipped
    assert code0 == EXIT_VERIFY, err0
    assert "transfer" in err0 and "from rank 1 failed verification" in err0 and "CRC-32" in err0
    assert code1 != 0, err1  # its peer went away: the whole job fails
    (run,) = [r for r in read_results(out0) if r["record"] == "run"]
    assert run["status"] == "failed" and "failed verification" in run["error"]


def test_without_the_flip_the_same_setup_passes(tmp_path):
    plan, plan_path = two_rank_plan(tmp_path)
    port0, port1 = free_ports(2)
    proxy = FlippingProxy(port0, flip_at=10**12)
    agent0, _ = start_agent(tmp_path, plan_path, 0, port0, {1: port1})
    agent1, _ = start_agent(tmp_path, plan_path, 1, port1, {0: proxy.port})
    assert finish(agent0)[0] == 0 and finish(agent1)[0] == 0


@pytest.mark.parametrize("lie, words", [("length", "announces"), ("xfer", "does not expect"),
                                         ("payload", "failed verification")])
def test_a_rogue_peer_is_caught(tmp_path, lie, words):
    plan, plan_path = two_rank_plan(tmp_path)
    digest = hashlib.sha256(plan_path.read_bytes()).digest()
    port0, port1 = free_ports(2)
    agent0, _ = start_agent(tmp_path, plan_path, 0, port0, {1: port1})
    sock = connect_as(port0, 1, 0, digest)
    first = plan.ranks[1].steps[0].sends[0]
    pattern = Pattern(plan.seed, 1, 0)
    length = first.size_bytes + (1 if lie == "length" else 0)
    xfer = first.xfer + (10**6 if lie == "xfer" else 0)
    payload = bytearray(pattern.view[:first.size_bytes])
    if lie == "payload":
        payload[-1] ^= 0xFF  # header CRC is the honest one; the bytes are not
    sock.sendall(pack_data_header(1, 0, xfer, length, pattern.crc(first.size_bytes)) + payload)
    code, err = finish(agent0)
    sock.close()
    assert code == EXIT_VERIFY and words in err, err


def test_stuck_agent_times_out_with_a_clear_error(tmp_path):
    plan, plan_path = two_rank_plan(tmp_path)
    digest = hashlib.sha256(plan_path.read_bytes()).digest()
    port0, port1 = free_ports(2)
    started = time.monotonic()
    agent0, out0 = start_agent(tmp_path, plan_path, 0, port0, {1: port1}, timeout_s=1.5)
    sock = connect_as(port0, 1, 0, digest)  # connects, then never sends anything
    code, err = finish(agent0)
    sock.close()
    assert code == EXIT_TIMEOUT
    assert "timed out after 1.5 s" in err and "waiting for transfer" in err and "from rank 1" in err
    assert time.monotonic() - started < 6
    (run,) = [r for r in read_results(out0) if r["record"] == "run"]
    assert run["status"] == "failed" and run["exit_code"] == EXIT_TIMEOUT


def test_missing_peer_is_a_connection_error(tmp_path):
    _, plan_path = two_rank_plan(tmp_path)
    port0, port1 = free_ports(2)
    agent1, _ = start_agent(tmp_path, plan_path, 1, port1, {0: port0}, timeout_s=5,
                            extra=("--connect-timeout-s", "1"))
    code, err = finish(agent1)
    assert code == EXIT_CONNECT and "could not connect to rank 0" in err


def test_agents_with_different_plans_refuse_each_other(tmp_path):
    _, plan_a = two_rank_plan(tmp_path, seed=1, name="a.json")
    _, plan_b = two_rank_plan(tmp_path, seed=2, name="b.json")
    port0, port1 = free_ports(2)
    agent0, _ = start_agent(tmp_path, plan_a, 0, port0, {1: port1}, timeout_s=5)
    agent1, _ = start_agent(tmp_path, plan_b, 1, port1, {0: port0}, timeout_s=5)
    (code0, err0), (code1, err1) = finish(agent0), finish(agent1)
    assert code0 == code1 == EXIT_CONFIG
    assert "another plan" in err0 and "another plan" in err1


def test_bad_arguments(tmp_path):
    _, plan_path = two_rank_plan(tmp_path)
    port0, port1 = free_ports(2)
    agent, _ = start_agent(tmp_path, plan_path, 7, port0, {0: port0, 1: port1})
    code, err = finish(agent)
    assert code == EXIT_CONFIG and "rank 7 is not a rank of the plan" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "lasermesh-plan"')
    agent, _ = start_agent(tmp_path, broken, 0, port0, {1: port1})
    code, err = finish(agent)
    assert code == EXIT_CONFIG and "broken.json" in err

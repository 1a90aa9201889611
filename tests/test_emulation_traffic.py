"""GPU-job replay on the emulated network: agents in host namespaces, real TCP over
shaped, delayed laser links, byte-exact verification, analytic timing."""

import time

import numpy as np
import pytest

from testbed.net.clock import LinkTimeline
from testbed.emulation import Emulation
from testbed.net.georef import tcp_payload_rate_bps
from testbed.net.plan import make_plan
from testbed.traffic import AGENT_PORT, AgentGroup
from testbed.workload import Collective, Workload, expand, ideal_time_s

from conftest import write_capture

pytestmark = pytest.mark.emulation
RATE_BPS = 20e6
DELAY_S = 0.005
N = 4


def ring_plan():
    """4 satellites in a ring, each a compute satellite: rank r talks to r+1 over one laser link."""
    return make_plan(range(N), {r: (f"c{r}", "compute") for r in range(N)},
                     [(r, (r + 1) % N, "isl", RATE_BPS, DELAY_S, True) for r in range(N)])


def all_reduce(size_bytes):
    ops = tuple((Collective(kind="all_reduce", size_bytes=size_bytes, group=tuple(range(N)), algorithm="ring"),)
                for _ in range(N))
    return Workload(n_ranks=N, ops=ops, meta={"source": "test", "parameters": {}})


def run_agents(emu, plan, workdir, timeout_s=120):
    group = AgentGroup(emu, plan, [f"c{r}" for r in range(N)], workdir, timeout_s=timeout_s)
    group.wait()
    return group


def test_ring_all_reduce_is_byte_exact_and_close_to_the_analytic_time(tmp_path):
    size = 4_000_000
    plan = expand(all_reduce(size))
    with Emulation(ring_plan(), "min_hop", log_dir=tmp_path) as emu:
        group = run_agents(emu, plan, tmp_path / "agents")
        summary = group.summary(rate_bps=tcp_payload_rate_bps(RATE_BPS), latency_s=DELAY_S)
    coll = summary.collectives
    transfers = summary.transfers
    # Each rank sends 2(N-1)/N * S bytes, all verified by the receiving agents.
    sends = transfers[transfers["direction"] == "send"]
    recvs = transfers[transfers["direction"] == "recv"]
    assert np.allclose(sends.groupby("rank")["size_bytes"].sum().to_numpy(), 2 * (N - 1) / N * size, rtol=1e-6)
    assert recvs["size_bytes"].sum() == sends["size_bytes"].sum()
    measured = coll["duration_s"].max()
    # The shaper counts whole frames, so the analytic model runs at the TCP payload rate.
    payload_bps = tcp_payload_rate_bps(RATE_BPS)
    ideal = ideal_time_s(plan, rate_bps=payload_bps, latency_s=DELAY_S)
    print(f"all-reduce {size} B over {N} ranks: measured {measured:.3f} s, analytic {ideal:.3f} s")
    assert ideal == pytest.approx(2 * (N - 1) * (DELAY_S + size / N * 8 / payload_bps), rel=1e-6)
    # Typically 2.5-4 % over (TCP/IP headers, slow start at each round); one run on a quiet
    # machine on 2026-12-02 reached 11.4 %, so the bound is 15 %: a wrong rate (x2) is far
    # outside it (propagation is only 1.2 % of this time; the RTT tests check the delays).
    assert abs(measured - ideal) / ideal < 0.15


def test_two_workloads_on_the_same_hosts_run_side_by_side(tmp_path):
    # A DDP and an MoE job on one cluster: each group's agents listen on their own port.
    plan = expand(all_reduce(1_000_000))
    hosts = [f"c{r}" for r in range(N)]
    with Emulation(ring_plan(), "min_hop", log_dir=tmp_path) as emu:
        groups = [AgentGroup(emu, plan, hosts, tmp_path / f"job{k}", timeout_s=120, port=AGENT_PORT + k)
                  for k in range(2)]
        for g in groups:
            g.wait()
    for g in groups:
        transfers = g.summary().transfers
        sent = transfers[transfers["direction"] == "send"]["size_bytes"].sum()
        assert sent == pytest.approx(2 * (N - 1) * 1_000_000, rel=1e-6)
        assert transfers[transfers["direction"] == "recv"]["size_bytes"].sum() == sent


@pytest.mark.uml
def test_a_link_change_during_an_all_reduce_completes_byte_exact_and_slows_it(tmp_path):
    size = 4_000_000
    plan = expand(all_reduce(size))
    with Emulation(ring_plan(), "min_hop", log_dir=tmp_path / "idle") as emu:
        base = run_agents(emu, plan, tmp_path / "idle-agents").summary().collectives["duration_s"].max()
    # Link 0-1 goes down 0.5 s into the collective: rank 0 -> 1 traffic detours the long way round.
    times = np.arange(0, 8.0, 0.5)
    up = np.ones((len(times), N), dtype=bool)
    up[times >= 0.5, 0] = False
    tl = LinkTimeline(times, np.full(up.shape, DELAY_S), up)
    with Emulation(ring_plan(), "min_hop", log_dir=tmp_path / "change", timeline=tl) as emu:
        clock = emu.clock
        group = AgentGroup(emu, plan, [f"c{r}" for r in range(N)], tmp_path / "change-agents", timeout_s=120,
                           start_at_unix=time.time() + 1.0)
        time.sleep(0.5)
        clock.run()
        group.wait()
        changed = group.summary().collectives["duration_s"].max()
    print(f"all-reduce with a link change: {changed:.3f} s vs {base:.3f} s idle")
    assert changed > base * 1.05


def test_pcap_replay_rewrites_addresses_and_measures_one_way_delay(tmp_path):
    from testbed.traffic.pcapreplay import replay
    # A capture between two outside addresses: 100 UDP packets each way, 5 ms apart.
    pcap = write_capture(tmp_path / "in.pcap", n=200, gap_s=0.005)
    delays_s = [0.004, 0.004]
    plan = make_plan(range(3), {0: ("h0", "compute"), 2: ("h2", "compute")},
                     [(0, 1, "isl", RATE_BPS, delays_s[0], True), (1, 2, "isl", RATE_BPS, delays_s[1], True)])
    with Emulation(plan, "min_hop", log_dir=tmp_path / "emu") as emu:
        # Zero-delay baseline of the same replay on the same path: what hosts and switches add.
        emu.backend.set_delays([(lk.link_id, 1e-6, 1e-6) for lk in plan.links])
        base = replay(emu, pcap, ["h0", "h2"], tmp_path / "replay-base")
        emu.backend.set_delays([(lk.link_id, d, d) for lk, d in zip(plan.links, delays_s)])
        table = replay(emu, pcap, ["h0", "h2"], tmp_path / "replay")
    assert len(table) == 200 and set(table["src"]) == {"h0", "h2"}
    assert table["t_recv"].notna().all() and base["t_recv"].notna().all()   # nothing lost on idle links
    one_way = table["one_way_s"]
    added_s = one_way.median() - base["one_way_s"].median()
    print(f"one-way median: baseline {base['one_way_s'].median() * 1e3:.3f} ms, "
          f"delayed {one_way.median() * 1e3:.3f} ms, added {added_s * 1e3:.3f} ms vs {sum(delays_s) * 1e3:.1f} ms")
    assert (one_way >= sum(delays_s)).all()
    # Each link's delay counted once: a missing link would add 4 ms, a doubled one 12 ms. The
    # slack is the idle wake-up cost per hop of the userspace datapath (see the RTT test).
    assert abs(added_s - sum(delays_s)) < 2e-3
    late_s = table["t_sent"] - table["t_due"]
    assert late_s.median() < 1e-3                             # original timing kept (open loop) ...
    gaps = table.sort_values("index")["t_sent"].diff().dropna()
    assert abs(gaps.median() - 0.005) < 0.001                 # ... not compressed into a burst

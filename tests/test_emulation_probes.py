"""The probe mesh on the real stack: kernel-stamped RTTs with sub-millisecond resolution that
follow the geometry, and a link taken down mid-run recorded as loss.

Chains are built from a plan (as in test_emulation_clock.py); each test asserts what real
packets through OVS and the link backend measured.
"""

import numpy as np
import pytest

from testbed.emulation import Emulation
from testbed.net.clock import LinkTimeline
from testbed.net.plan import chain_plan, make_plan
from testbed.traffic.probes import ProbeMesh

pytestmark = pytest.mark.emulation

#: 50 ms per link, two links: a geometric RTT of 200 ms, where ping prints whole milliseconds.
DELAY_S = 0.050
#: The end-to-end bound on the RTT beyond the zero-delay baseline. The goal is 1 ms; on a quiet
#: host this test measures 0.3-0.9 ms, but a loaded CI host measured 1.56 ms (202.51 ms median
#: against 200 + 0.95 baseline): delayed frames wait for wake-ups of the delay line and of three
#: idle userspace switches that back-to-back baseline frames do not. The link backend's own hold
#: times are held to HOLD_S, so a failure here says whether the links or the machine were late.
FIDELITY_S = 2.5e-3
HOLD_S = 0.2e-3


def _on_whole_ms(rtt_s: np.ndarray) -> np.ndarray:
    return np.abs(rtt_s * 1e3 - np.round(rtt_s * 1e3)) < 1e-6


def test_probe_rtts_resolve_below_a_millisecond_and_match_the_geometric_rtt(tmp_path):
    plan = chain_plan(3, DELAY_S, 20e6)
    geo_rtt_s = 2 * DELAY_S * len(plan.links)
    pairs = [("h0", "h2"), ("h2", "h0")]
    with Emulation(plan, "min_hop", log_dir=tmp_path) as emu:
        emu.ping("h0", "h2", count=2, interval_s=0.1)                   # warm up (ARP, flows)
        # Zero-delay baseline of the same path, same probes: what the switches add (as in
        # test_emulation_clock.py's 1 ms test; measured here 0.9-1.2 ms for 3 userspace switches).
        emu.backend.set_delays([(lk.link_id, 1e-6, 1e-6) for lk in plan.links])
        base = ProbeMesh(emu, pairs, rate_hz=20.0, duration_s=2.0).collect()
        emu.backend.set_delays([(lk.link_id, DELAY_S, DELAY_S) for lk in plan.links])
        rows = ProbeMesh(emu, pairs, rate_hz=20.0, duration_s=3.0, workdir=tmp_path / "probes").collect()
        held = emu.fidelity()        # what the link backend says it held the frames for
    rtt = rows["rtt_s"].dropna().to_numpy()
    base_s = base["rtt_s"].median()
    on_ms = _on_whole_ms(rtt).mean()
    steps_s = np.abs(np.diff(rtt))
    print(f"{len(rows)} probes, loss {rows['rtt_s'].isna().mean():.3f}, median RTT {np.median(rtt) * 1e3:.4f} ms "
          f"(geometric {geo_rtt_s * 1e3:g}, zero-delay baseline {base_s * 1e3:.4f}), on whole ms {on_ms:.3f}, "
          f"smallest step {steps_s[steps_s > 0].min() * 1e9:.0f} ns, one-way median "
          f"{rows['one_way_s'].median() * 1e3:.4f} ms, kernel TX stamps {rows['tx_kernel'].mean():.2f}")
    assert len(rows) == 2 * 60 and set(rows["src"]) == {"h0", "h2"}
    assert rows["rtt_s"].isna().mean() < 0.05 and base["rtt_s"].isna().mean() < 0.05
    assert on_ms < 0.05
    assert np.all(rtt >= geo_rtt_s)                                    # never faster than the links
    # The links held each frame for its configured delay (read back from the data path) ...
    if "held_mean_ms" in held:
        assert abs(held["held_mean_ms"] - held["configured_mean_ms"]) < HOLD_S * 1e3, held
    # ... and end to end the RTT is the geometric one plus what the switches add.
    assert abs(np.median(rtt) - base_s - geo_rtt_s) < FIDELITY_S, held
    # Forward one-way: half the path's delay, same bound; both halves add up to the RTT.
    fwd = rows["one_way_s"].dropna()
    assert abs(fwd.median() - base["one_way_s"].median() - geo_rtt_s / 2) < FIDELITY_S
    assert np.allclose(rows["one_way_s"] + rows["back_s"], rows["rtt_s"], atol=1e-9, equal_nan=True)
    assert not rows["reordered"].any()


def test_a_link_taken_down_mid_run_shows_as_loss_not_a_crash(tmp_path):
    step_s = 0.5
    times = np.arange(0, 4.0, step_s)
    up = np.ones((len(times), 2), dtype=bool)
    up[(times >= 1.5) & (times < 2.5), 1] = False           # link 1-2 down from 1.5 s to 2.5 s
    tl = LinkTimeline(times, np.full(up.shape, 0.002), up)
    with Emulation(chain_plan(3, 0.002, 20e6), "min_hop", log_dir=tmp_path, timeline=tl) as emu:
        mesh = ProbeMesh(emu, [("h0", "h2")], rate_hz=40.0, duration_s=4.0, timeout_s=0.5)
        start = mesh.start_unix + 0.2
        emu.clock.run(start_unix=start)
        rows = mesh.collect()
    t = rows["t_unix"].to_numpy() - start
    lost = rows["rtt_s"].isna().to_numpy()
    assert len(rows) == 160 and np.array_equal(rows["seq"], np.arange(160))
    down = (t > 1.5 + 0.05) & (t < 2.5 - 0.05)
    assert down.sum() > 30 and lost[down].all()
    before, after = (t > 0.1) & (t < 1.5 - 0.05), (t > 2.5 + 0.3) & (t < 3.5)
    assert before.sum() > 40 and not lost[before].any()
    assert after.sum() > 20 and not lost[after].any()
    assert not rows["reordered"].any()


def test_a_switch_to_a_much_shorter_path_shows_as_reordering(tmp_path):
    """Square 0-1-2-3: h0 and h2 opposite. Via 1 is 2 x 40 ms, via 3 is 2 x 50 ms until 2 s,
    then 2 x 5 ms: min_delay moves to it and probes sent after the change overtake those
    still on the 160 ms round trip."""
    step_s = 0.5
    times = np.arange(0, 4.0, step_s)
    links = [(0, 1, "isl", 20e6, 0.040, True), (1, 2, "isl", 20e6, 0.040, True),
             (0, 3, "isl", 20e6, 0.050, True), (3, 2, "isl", 20e6, 0.050, True)]
    plan = make_plan(range(4), {0: ("h0", "compute"), 2: ("h2", "compute")}, links)
    delay = np.array([[lk.delay_s for lk in plan.links]] * len(times))
    via3 = [lk.link_id for lk in plan.links if 3 in (lk.a, lk.b)]
    delay[np.ix_(times >= 2.0, via3)] = 0.005
    tl = LinkTimeline(times, delay, np.ones_like(delay, dtype=bool))
    with Emulation(plan, "min_delay", log_dir=tmp_path, timeline=tl) as emu:
        mesh = ProbeMesh(emu, [("h0", "h2")], rate_hz=50.0, duration_s=4.0)
        start = mesh.start_unix + 0.2
        emu.clock.run(start_unix=start)
        rows = mesh.collect()
    t = rows["t_unix"].to_numpy() - start
    rtt = rows["rtt_s"].to_numpy()
    print(f"reordered at t = {np.round(t[rows['reordered'].to_numpy()], 3)}, loss {np.isnan(rtt).mean():.3f}")
    assert np.nanmedian(rtt[(t > 0.2) & (t < 1.8)]) == pytest.approx(0.160, abs=FIDELITY_S * 5)
    assert np.nanmedian(rtt[(t > 2.5) & (t < 3.5)]) == pytest.approx(0.020, abs=FIDELITY_S * 5)
    flagged = t[rows["reordered"].to_numpy()]
    # Replies of probes sent up to one RTT before the switch arrive after later ones; nowhere else.
    assert len(flagged) >= 3
    assert np.all((flagged > 2.0 - 0.2) & (flagged < 2.0 + step_s)), flagged

"""The clock's two lags (pure: the clock's own timing, with a data plane that only records
when it was told and a controller that takes longer than a step once)."""

import time

import numpy as np

from testbed.net.clock import Clock, LinkTimeline
from testbed.net.plan import make_plan

STEP_S = 0.1


def test_a_slow_controller_step_is_done_late_and_delays_the_next_steps_changes_not_its_own():
    plan = make_plan(range(2), {}, [(0, 1, "isl", 1e6, 0.01, True)])
    times = np.arange(6) * STEP_S
    delay = 0.01 + 0.001 * np.arange(6)[:, None]            # a delay change at every step
    applied = {}
    def set_delays(changes):
        applied[len(applied) + 1] = time.monotonic()
        return 0.0
    def controller(msg):
        time.sleep(0.25 if msg["step"] == 2 else 0.0)        # 2.5 steps at step 2, else at once
        return {}
    clock = Clock(plan, LinkTimeline(times, delay, np.ones((6, 1), bool)), set_delays, lambda u, d: None,
                  controller_request=controller)
    t0 = time.monotonic()
    recs = {r.step: r for r in clock.run()}
    due = {k: t0 + times[k] - times[0] for k in recs}
    # Each step's lag is when its delays were set, measured against its due time.
    for k, r in recs.items():
        assert abs(r.lag_s - max(0.0, applied[k] - due[k])) < 0.01, (k, r)
        assert r.done_lag_s >= r.lag_s
    # Step 2's changes were in force on time; it was done 0.25 s (2.5 steps) late.
    assert recs[2].lag_s < 0.05 and 0.24 < recs[2].done_lag_s < 0.35
    # Step 3 waited for it: its changes came ~1.5 steps late; the clock then caught up.
    assert 0.12 < recs[3].lag_s < 0.25 and recs[5].lag_s < 0.05

"""Fidelity claims come from what the link backend did, never from a literal.

A real network with the real delay line, once as it is and once with a delay line told
zero delay whatever the schedule says (a backend that does not delay): the manifest's
``delay_emulated`` must tell them apart.
"""

import dataclasses

import numpy as np
import pytest

from testbed.emulation import Emulation
from testbed.links.backends import DelayLineBackend
from testbed.net.plan import chain_plan
from testbed.results.manifest import base_manifest, record_fidelity

pytestmark = pytest.mark.emulation

DELAY_S = 0.005


class NoDelayLine(DelayLineBackend):
    """The real delay line, but every delay it is given is replaced by zero."""

    def _create(self, links):
        super()._create([dataclasses.replace(lk, delay_s=0.0) for lk in links])

    def _set_delays(self, changes):
        return super()._set_delays([(lid, 0.0, 0.0) for lid, _, _ in changes])


def _run(tmp_path, broken: bool):
    plan = chain_plan(3, DELAY_S, 20e6)
    emu = Emulation(plan, "min_hop", log_dir=tmp_path)
    if emu.backend_name != "delayline":
        pytest.skip("this machine uses netem; the delay-line fidelity check needs the delay line")
    if broken:
        emu.backend = NoDelayLine(emu.backend.binary)      # the network is built with it on enter
    with emu:
        ping = emu.ping(plan.hosts[0].name, plan.hosts[-1].name, count=10, interval_s=0.05)
        fidelity = emu.fidelity()
    return plan, ping, fidelity


def test_a_delaying_backend_is_recorded_as_delaying(tmp_path):
    plan, ping, fidelity = _run(tmp_path, broken=False)
    assert fidelity["delay_emulated"] is True, fidelity
    assert fidelity["links_delay_mismatch"] == 0 and fidelity["frames_delayed"] > 0
    assert fidelity["held_mean_ms"] == pytest.approx(DELAY_S * 1e3, rel=0.1)
    assert np.median(ping.rtts_s) > 2 * len(plan.links) * DELAY_S
    manifest = base_manifest("t", "r", "delayline", "user")
    record_fidelity(manifest, "min_hop", fidelity)
    assert manifest["delay_emulated"] is True


def test_a_backend_that_does_not_delay_is_recorded_as_not_delaying(tmp_path):
    plan, ping, fidelity = _run(tmp_path, broken=True)
    # The traffic really was not delayed ...
    assert np.median(ping.rtts_s) < len(plan.links) * DELAY_S
    # ... and the record says so.
    assert fidelity["delay_emulated"] is False, fidelity
    assert fidelity["links_delay_mismatch"] == len(plan.links)
    manifest = base_manifest("t", "r", "delayline", "user")
    record_fidelity(manifest, "min_hop", fidelity)
    assert manifest["delay_emulated"] is False

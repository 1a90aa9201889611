"""``testbed.open_network``: a spec's network as a Mininet object, for Mininet scripts.

::

    import testbed
    with testbed.open_network("experiments/handover.toml", algorithm="min_delay") as net:
        h = net.hosts[0]
        print(h.cmd("ping -c 3", net.hosts[1].IP()))   # while the orbit replays
        print(net["lms21"].dpctl("dump-flows"))
    # everything torn down here: shells, switches, links, namespaces, controller

The spec's schedule is generated, the network built with the spec's first algorithm (or
``algorithm``), the controller's rules installed, and the clock started in a background
thread at the spec's ``speedup`` (or ``speedup``). Leaving the ``with`` block (normally,
by an exception or Ctrl-C) stops the clock before its next step, ends what Mininet
started and tears the whole network down. No results are written: the controller's log
and step log go to ``log_dir`` (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from testbed.errors import InputError

#: Wall seconds between the network being ready and the replay's step 1 timer starting.
LEAD_S = 0.5


@contextlib.contextmanager
def open_network(spec_or_path, algorithm: str | None = None, params: dict | None = None, *,
                 speedup: float | None = None, log_dir: str | Path | None = None,
                 replay: bool = True) -> Iterator["TestbedMininet"]:  # noqa: F821
    """Builds the network of a spec and yields it as a :class:`~testbed.mininet.net.TestbedMininet`.

    Parameters
    ----------
    spec_or_path : a :class:`testbed.spec.Spec` or the path of a spec TOML file.
    algorithm : routing algorithm name (default: the spec's first); ``params`` its parameters
        (default: that spec entry's, or none).
    speedup : orbital seconds per wall second (default: the spec's ``[time] speedup``).
    log_dir : folder for ``controller.log`` and the controller's step log (kept); default a
        temporary folder removed on close.
    replay : False holds the network at step 0 (no clock thread).
    """
    from controllers.algorithms import ALGORITHMS
    from testbed.emulation import Emulation
    from testbed.experiment import FUTURE_HORIZON_S, MAX_FUTURE_STEPS
    from testbed.mininet.net import TestbedMininet
    from testbed.mininet.replay import ClockThread
    from testbed.net.scenario import from_schedule
    from testbed.spec import load_spec
    import math
    import topologies

    spec = load_spec(spec_or_path) if isinstance(spec_or_path, (str, Path)) else spec_or_path
    entry = next((a for a in spec.algorithms if algorithm in (None, a.name, a.label)), None)
    name = algorithm or entry.name
    if name not in ALGORITHMS:
        raise InputError(f"algorithm: unknown {name!r} (known: {', '.join(sorted(ALGORITHMS))})")
    if params is None:
        params = dict(entry.params) if entry is not None and entry.name == name else {}
    speedup = spec.speedup if speedup is None else float(speedup)
    if not speedup > 0:
        raise InputError(f"speedup: must be > 0, got {speedup}")
    schedule = topologies.generate(spec.schedule_config())
    plan, timeline = from_schedule(schedule, spec.rate_scale)
    future = 0
    if ALGORITHMS[name].uses_future:
        future = min(MAX_FUTURE_STEPS, max(1, math.ceil(FUTURE_HORIZON_S / max(float(schedule.step_s), 1e-9))))

    tmp = None if log_dir is not None else Path(tempfile.mkdtemp(prefix="lmtb-net-"))
    folder = Path(log_dir) if log_dir is not None else tmp
    folder.mkdir(parents=True, exist_ok=True)
    net = clock = None
    try:
        with Emulation(plan, name, params, log_dir=folder, backend=spec.backend, run_id="mininet",
                       timeline=timeline, speedup=speedup, future_steps=future) as emu:
            try:
                if replay:
                    clock = ClockThread(emu.clock, start_unix=time.time() + LEAD_S).start()
                net = TestbedMininet(emu, clock)
                net.schedule = schedule
                yield net
            finally:
                if clock is not None:
                    clock.stop()
                if net is not None:
                    net.stop()
            if clock is not None and clock.error is not None:
                raise clock.error
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

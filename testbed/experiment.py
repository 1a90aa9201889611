"""``testbed run SPEC``: every algorithm of a spec on the identical scenario.

One schedule is generated (and saved) per run; each algorithm then gets a freshly built
network from it, its own controller, the same probes, background flows and workloads
started at the same orbital epoch, and the clock replaying the same timeline. Results
go to ``results/<experiment>/<run_id>/`` (see results/README.md); the folder is marked
``INCOMPLETE`` until the very end, so an interrupted run (Ctrl-C, SIGTERM, crash) never
looks finished, and the network is always torn down.

With ``[emulation] time_dilation = D`` everything is set D times slower on the wall clock
and every measurement is brought back to emulated seconds before it is written; the
conversions are those of :mod:`testbed.net.dilation`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

import topologies
from topologies.summary import coverage_gaps
from controllers.algorithms import resolve_algorithm
from testbed.control.placement import location_node, parse_location
from testbed.emulation import Emulation
from testbed.errors import RunFailed
from testbed.faults import FaultPlan, apply_faults
from testbed.net import dilation
from testbed.net.clock import LinkTimeline
from testbed.net.georef import geo_rtt_s, tcp_payload_rate_bps
from testbed.net.plan import NetworkPlan
from testbed.net.scenario import from_schedule
from testbed.power import PowerState, evaluate
from testbed.report import make_report
from testbed.report.metrics import folder_metrics
from testbed.report.stats import summary_statistics
from testbed.results.manifest import base_manifest, record_fidelity
from testbed.results.tables import (TimeBase, clock_table, controller_tables, flow_tables, pcap_tables,
                                    faults_table, power_table, rtt_table, workload_tables)
from testbed.results.writer import FailureRecorder, RunDir
from testbed.spec.feasibility import agent_timeout_s
from testbed.system import machine
from testbed.system.tracking import RunLock
from testbed.traffic import AGENT_PORT, AgentGroup, BackgroundFlows, ProbeMesh
from testbed.traffic.pcapreplay import ReplayThreads
from testbed.workload import expand

LEAD_S = 2.0             # wall time between starting the traffic and the clock's step 0
#: Of LEAD_S, what the agents' connections take (a few RTTs of the emulated network, emulated
#: s): under time dilation this part takes D times longer (at D = 4 with 2 s of lead, ranks of
#: a 4x4 shell at 5,000 km started 0.75 s wall late), process starts do not.
CONNECT_LEAD_S = 1.0
PROBE_TIMEOUT_S = 1.0    # a probe reply later than this (emulated s) counts as lost
FUTURE_HORIZON_S = 5.0   # how far ahead the controller is told the schedule (predictive)
MAX_FUTURE_STEPS = 20


@dataclass
class Scenario:
    """What every algorithm of a run shares."""

    schedule: object
    plan: NetworkPlan
    timeline: LinkTimeline
    probe_pairs: list[tuple[str, str]]
    geo_rtt_s: np.ndarray            # (n_steps, n_pairs)
    workloads: list[tuple[str, object, list[str]]]   # (label, scaled workload, host per rank)
    background: list[tuple[str, str, float, float, float]]
    duration_s: float
    power: PowerState | None = None          # per step x compute host (``power_hosts``)
    power_hosts: tuple[str, ...] = ()
    base_up: np.ndarray | None = None        # link usability before scheduled faults


def host_names_by_kind(plan: NetworkPlan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"compute": [], "ground": []}
    for h in plan.hosts:
        out.setdefault(h.kind, []).append(h.name)
    return out


def prepare(spec, run_dir: RunDir, log=print) -> Scenario:
    t = time.perf_counter()
    schedule = topologies.generate(spec.schedule_config(), progress=os.isatty(2))   # a bar on a terminal
    schedule.save(run_dir.path / "schedule.parquet")
    plan, timeline = from_schedule(schedule, spec.rate_scale)
    base_up = timeline.up
    if spec.faults:        # lost lasers and satellites are part of the scenario every algorithm sees
        timeline = LinkTimeline(timeline.times_s, timeline.delay_s,
                                trial_faults(spec, schedule, plan, timeline.times_s, base_up, 0).up)
    log(f"run: schedule {schedule.n_steps} steps x {len(plan.links)} links, {len(plan.switches)} switches, "
        f"{len(plan.hosts)} hosts ({time.perf_counter() - t:.1f} s)")
    for name, gaps in coverage_gaps(schedule).items():      # a measurement, but one to know about
        log(f"run: warning: ground station {name} has no satellite link during "
            + ", ".join(f"{a:g}-{b:g} s" for a, b in gaps[:6]) + (" ..." if len(gaps) > 6 else ""))
    by_kind = host_names_by_kind(plan)
    pairs = spec.probes.resolve_pairs(by_kind) if spec.probes else []
    node = {h.name: h.node_id for h in plan.hosts}
    geo = geo_rtt_s(plan, timeline, [(node[a], node[b]) for a, b in pairs]) if pairs else np.zeros((timeline.n_steps, 0))
    compute_nodes = [h.node_id for h in plan.hosts if h.kind == "compute"]
    sunlit_share = schedule.sunlit[:, compute_nodes].mean(axis=0).tolist()   # for placement = "sunlit"
    workloads = []
    for w in spec.workloads:
        wl = w.build().scaled(spec.rate_scale)
        hosts = w.place(by_kind, sunlit_share)
        if len(hosts) < wl.n_ranks:
            raise RunFailed(f"workload {w.label}: {wl.n_ranks} ranks but only {len(hosts)} compute hosts")
        expand(wl, seed=spec.seed)        # a workload that cannot be replayed fails before any network
        workloads.append((w.label, wl, list(hosts[: wl.n_ranks])))
    background = [(b.src, b.dst, b.rate_bps, b.start_s, b.duration_s) for b in spec.background]
    duration_s = float(timeline.times_s[-1] - timeline.times_s[0])
    power, power_hosts = None, ()
    if spec.power is not None:
        compute = [h for h in plan.hosts if h.kind == "compute"]
        power = evaluate(spec.power, schedule.sunlit[:, [h.node_id for h in compute]], schedule.step_s)
        power_hosts = tuple(h.name for h in compute)
        power_table(run_dir, power, power_hosts, [h.node_id for h in compute], timeline.times_s)
    return Scenario(schedule, plan, timeline, pairs, geo, workloads, background, duration_s, power, power_hosts,
                    base_up)


def trial_faults(spec, schedule, plan: NetworkPlan, times_s: np.ndarray, base_up: np.ndarray,
                 trial: int) -> FaultPlan:
    """The spec's faults on this trial (compute resets are drawn from the trial's seed; lost
    lasers and satellites are the same in every trial), applied to the schedule's link states."""
    compute = [h.node_id for h in plan.hosts if h.kind == "compute"]
    pos = schedule.positions
    return apply_faults(spec.faults, plan.links, times_s, base_up, compute,
                        pos.lat_deg[:, compute], pos.lon_deg[:, compute], trial_seed(spec, trial))


def _clock_profiles(sc: Scenario, faults: FaultPlan | None, start_unix: float,
                    speedup: float) -> dict[str, dict] | None:
    """Per compute host, its accelerator's clock fraction over wall time from ``start_unix``:
    the power model's, times zero while a scheduled reset holds it."""
    if sc.power is None and (faults is None or faults.clock_fraction is None):
        return None
    hosts = [h.name for h in sc.plan.hosts if h.kind == "compute"]
    fraction = np.ones((sc.timeline.n_steps, len(hosts)))
    if sc.power is not None:
        fraction *= sc.power.clock_fraction
    if faults is not None and faults.clock_fraction is not None:
        fraction *= faults.clock_fraction
    wall_s = ((sc.timeline.times_s - sc.timeline.times_s[0]) / speedup).tolist()
    return {host: {"t0_unix": start_unix, "times_s": wall_s, "fraction": fraction[:, j].tolist()}
            for j, host in enumerate(hosts)}


def _run_with_shell(emu: Emulation, clock, on_step, start_unix: float):
    """The clock in a background thread, Mininet's CLI (testbed/mininet/) in the foreground;
    leaving the CLI lets the run go on to the schedule's end."""
    from testbed.mininet.cli import TestbedCLI        # Mininet is imported only for --cli
    from testbed.mininet.net import TestbedMininet
    from testbed.mininet.replay import ClockThread

    replay = ClockThread(clock, start_unix=start_unix, on_step=on_step).start()
    net = TestbedMininet(emu, replay)
    try:
        TestbedCLI(net)
        return replay.join()
    finally:
        replay.stop()
        net.stop()


def trial_seed(spec, trial: int) -> int:
    """The seed of trial ``trial`` (0-based): the spec's seed plus the trial index."""
    return spec.seed + trial


def trial_order(algorithms: Sequence, trial: int) -> list:
    """Algorithms in the order trial ``trial`` runs them: rotated by one per trial, so that the
    drift of a shared machine over a run favours none of them."""
    k = trial % len(algorithms) if algorithms else 0
    return list(algorithms[k:]) + list(algorithms[:k])


def run_algorithm(spec, alg, sc: Scenario, run_dir: RunDir, backend: str, caps, log=print,
                  cli: bool = False, trial: int = 0) -> dict:
    """One algorithm on the scenario, in one trial; writes its tables (each with a ``trial``
    column) into ``run_dir/<label>/trial-<trial>/``."""
    adir = run_dir.path / alg.label / f"trial-{trial}"
    adir.mkdir(parents=True, exist_ok=True)
    sub = RunDir(adir, run_dir.run_id, trial=trial)
    seed = trial_seed(spec, trial)
    faults = trial_faults(spec, sc.schedule, sc.plan, sc.timeline.times_s, sc.base_up, trial) if spec.faults else None
    tl = sc.timeline
    future = min(MAX_FUTURE_STEPS, max(1, math.ceil(FUTURE_HORIZON_S / max(spec.schedule_config().step_s, 1e-9))))
    if not resolve_algorithm(alg.ref).uses_future:
        future = 0          # the schedule's future only for algorithms that read it
    location = spec.location_of(alg)
    control_node = location_node(parse_location(location, spec.ground_names, spec.n_satellites),
                                 {h.name: h.switch for h in sc.plan.hosts})
    D = spec.time_dilation
    per_wall_s = dilation.wall_speedup(spec.speedup, D)      # orbital s per wall s
    wall_s = sc.duration_s / per_wall_s
    with Emulation(sc.plan, alg.ref, alg.params, log_dir=adir, backend=backend, run_id=run_dir.run_id,
                   caps=caps, lock=False, timeline=tl, speedup=spec.speedup, future_steps=future,
                   controller_outages=faults.controller_outages if faults else (), updates=alg.updates,
                   time_dilation=D, control_node=control_node) as emu:
        log(f"run: trial {trial}, {alg.label}: network up in {sum(emu.network.timings_s.values()):.1f} s; "
            f"replaying {sc.duration_s:g} s of orbit ({wall_s:g} s wall"
            + (f", time dilation {D:g})" if D != 1 else ")"))
        clock = emu.clock
        lead_s = LEAD_S + dilation.wall_s(CONNECT_LEAD_S, D) - CONNECT_LEAD_S      # LEAD_S at D = 1
        start_unix = time.time() + lead_s
        probes = (ProbeMesh(emu, sc.probe_pairs, dilation.wall_rate_hz(spec.probes.rate_hz, D), wall_s + lead_s,
                            timeout_s=dilation.wall_s(PROBE_TIMEOUT_S, D)) if sc.probe_pairs else None)
        # Workloads may share hosts (a DDP and an MoE job on the same cluster): one port each.
        groups = [(label, AgentGroup(emu, expand(wl, seed=seed), hosts, adir / "agents" / label,
                                     timeout_s=agent_timeout_s(wall_s), start_at_unix=start_unix,
                                     port=AGENT_PORT + k,
                                     clocks=_clock_profiles(sc, faults, start_unix, per_wall_s), dilation=D,
                                     unfinished_ok=True))
                  for k, (label, wl, hosts) in enumerate(sc.workloads)]
        flows = BackgroundFlows(emu, sc.background, start_unix, dilation=D) if sc.background else None
        captures = (ReplayThreads(emu, spec.pcaps, adir / "pcap", start_unix, per_wall_s, dilation=D)
                    if spec.pcaps else None)
        stops = [g.stop for _, g in groups] + ([flows.stop] if flows else [])   # on error or Ctrl-C
        bar = tqdm(total=tl.n_steps - 1, desc=f"trial {trial} {alg.label}", unit="step", leave=False,
                   disable=not os.isatty(2))

        def on_step(rec):
            bar.update(1)
            emu.check_alive(sessions=False)     # a dead agent is named as such, not by its peers
            for label, g in groups:
                msg = g.failed()
                if msg:
                    raise RunFailed(f"workload {label}: {msg}")
        try:
            if cli:
                records = _run_with_shell(emu, clock, on_step, start_unix)
            else:
                records = clock.run(on_step=on_step, start_unix=start_unix)
        except BaseException:
            for stop in stops:      # timers not yet fired must not start flows on a torn-down network
                stop()
            raise
        finally:
            bar.close()
        end_unix = time.time()
        for label, g in groups:
            g.wait()
            left = g.unfinished()
            if left:     # a measurement (an outage, a paused rank), not a failure of the testbed
                log(f"run: trial {trial}, {alg.label}: workload {label} did not finish within "
                    f"{g.timeout_s:g} s: " + ", ".join(f"rank {u['rank']} on {u['host']} ({u['steps_done']} of "
                                                       f"{u['steps_total']} steps)" for u in left))
        outlasted_s = dilation.emulated_s(max(0.0, time.time() - end_unix), D)
        rtt = probes.collect() if probes else None
        thr = flows.collect() if flows else None
        try:
            replays = captures.collect() if captures else {}
        except RuntimeError as err:
            raise RunFailed(str(err)) from None
        emu.check_alive()
        fidelity = emu.fidelity()
        teardown_unix = time.time()   # controller events after this are the tear-down's, not the run's
    tb = TimeBase(start_unix, tl, per_wall_s)
    summary: dict = {"workload_outlasted_schedule_s": outlasted_s, "fidelity": fidelity, "seed": seed,
                     "updates": alg.updates,
                     "time_base": {"start_unix": start_unix, "t_first_s": float(tl.times_s[0]),
                                   "speedup": per_wall_s, "time_dilation": D},
                     "controller_location": location}
    # Tables in emulated seconds: the clock's durations (lag, apply, controller) / D, and its
    # lag bound in emulated seconds too (max_lag_steps steps of step_s / speedup each).
    records = [dataclasses.replace(r, **{k: dilation.emulated_s(getattr(r, k), D) for k in dilation.CLOCK_DURATIONS})
               for r in records]
    clock_table(sub, records, summary, max_lag_s=spec.max_lag_steps * spec.step_s / spec.speedup)
    if rtt is not None:
        rtt = dilation.emulated_frame(rtt, D, durations=dilation.PROBE_DURATIONS)
        rtt_table(sub, rtt, tb, sc.probe_pairs, sc.geo_rtt_s, summary)
    controller_tables(sub, sc.plan, tb, teardown_unix, summary)
    if thr is not None:
        flow_tables(sub, thr, tb, summary)
    for label, g in groups:
        s = g.summary(rate_bps=_min_rate(sc.plan), latency_s=_rank_latency(sc, g))
        late_s = g.start_late_s(start_unix)
        workload_tables(sub, label, s, len(groups), None if late_s is None else dilation.emulated_s(late_s, D),
                        tb, summary)
        summary.setdefault("workloads", {}).setdefault(label, {})["unfinished"] = g.unfinished()
    pcap_tables(sub, replays, tb, summary, dilation=D)
    summary["metrics"] = folder_metrics(sub.path)      # the report's own definitions, per trial
    if faults is not None:
        faults_table(sub, faults.events, summary)
    return summary


def _min_rate(plan: NetworkPlan) -> float:
    """TCP payload rate of the slowest link, bit/s: the rate of the no-contention ideal."""
    return tcp_payload_rate_bps(min((lk.rate_bps for lk in plan.links), default=1.0))


def _rank_latency(sc: Scenario, group: AgentGroup) -> dict[tuple[int, int], float]:
    """One-way geometric latency between the ranks' hosts at step 0 (for the ideal-time model)."""
    node = {h.name: h.node_id for h in sc.plan.hosts}
    ranks = list(enumerate(group.hosts))
    pairs = [(ra, rb) for ra, _ in ranks for rb, _ in ranks if ra != rb]
    if not pairs:
        return {}
    first = LinkTimeline(sc.timeline.times_s[:1], sc.timeline.delay_s[:1], sc.timeline.up[:1])
    one_way = geo_rtt_s(sc.plan, first, [(node[group.hosts[a]], node[group.hosts[b]]) for a, b in pairs])[0] / 2
    return {pair: float(d) if np.isfinite(d) else 1.0 for pair, d in zip(pairs, one_way)}


def run_experiment(spec, results_root: Path | None = None, log=print, cli: bool = False) -> Path:
    """Runs every algorithm of ``spec``; returns the run folder."""
    caps = machine.require_runnable()
    backend = machine.choose_backend(caps, spec.backend)
    root = Path(results_root) if results_root else Path(spec.output_dir)
    rec = FailureRecorder()     # why the run stopped -> INCOMPLETE and the manifest
    with RunLock(), rec:
        run_dir = rec.run_dir = RunDir.create(root / spec.name)
        log(f"run: {spec.name} -> {run_dir.path}")
        manifest = base_manifest(
            spec.name, run_dir.run_id, backend, machine.choose_datapath(caps),
            spec=spec.raw, spec_path=str(spec.path), seed=spec.seed, rate_scale=spec.rate_scale,
            speedup=spec.speedup, time_dilation=spec.time_dilation,
            scaling="link rates = capacity_bps x rate_scale; workload bytes x rate_scale; "
                    "propagation delays and compute times unscaled"
                    + (f"; time dilation {spec.time_dilation:g}: delays, compute and timers x "
                       f"{spec.time_dilation:g} and rates / {spec.time_dilation:g} on the wall clock, "
                       "measured durations / D (tables in emulated seconds)" if spec.time_dilation != 1 else ""),
            algorithms=[a.label for a in spec.algorithms], schedule="schedule.parquet", trials=spec.trials,
            trial_seeds=[trial_seed(spec, k) for k in range(spec.trials)],
            trial_order=[[a.label for a in trial_order(spec.algorithms, k)] for k in range(spec.trials)],
            time_base={})
        rec.manifest = manifest
        run_dir.write_json("manifest.json", manifest)
        sc = prepare(spec, run_dir, log)
        manifest.update(epoch=sc.schedule.epoch.isoformat(), step_s=float(sc.schedule.step_s))
        run_dir.write_json("manifest.json", manifest)
        summary: dict = {"algorithms": {a.label: {"trials": {}} for a in spec.algorithms}}
        for trial in range(spec.trials):
            for alg in trial_order(spec.algorithms, trial):
                rec.where = f"{alg.label}/trial-{trial}"
                result = run_algorithm(spec, alg, sc, run_dir, backend, caps, log, cli=cli, trial=trial)
                summary["algorithms"][alg.label]["trials"][str(trial)] = result
                record_fidelity(manifest, f"{alg.label}/{trial}", result["fidelity"])
                manifest["time_base"][f"{alg.label}/{trial}"] = result["time_base"]
                run_dir.write_json("manifest.json", manifest)
                run_dir.write_json("summary.json", summary)
        summary["workloads_unfinished"] = sorted(
            f"{label}/{k}/{w}" for label, a in summary["algorithms"].items() for k, t in a["trials"].items()
            for w, ws in t.get("workloads", {}).items() if ws.get("unfinished"))
        summary["clock_fell_behind"] = sorted(f"{label}/{k}" for label, a in summary["algorithms"].items()
                                              for k, t in a["trials"].items() if t.get("kept_time") is False)
        rec.where = None
        summary["statistics"] = summary_statistics(summary["algorithms"], manifest["trial_order"])
        run_dir.write_json("summary.json", summary)
        run_dir.complete()
    make_report(run_dir.path)
    log(f"run: done: {run_dir.path}")
    return run_dir.path

"""``testbed run SPEC``: every algorithm of a spec on the identical scenario.

One schedule is generated (and saved) per run; each algorithm then gets a freshly built
network from it, its own controller, the same probes, background flows and workloads
started at the same orbital epoch, and the clock replaying the same timeline. Results
go to ``results/<experiment>/<run_id>/`` (see results/README.md); the folder is marked
``INCOMPLETE`` until the very end, so an interrupted run (Ctrl-C, SIGTERM, crash) never
looks finished, and the network is always torn down.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from controllers.algorithms import ALGORITHMS

from . import probe
from .clock import LinkTimeline
from .emulation import Emulation
from .errors import RunFailed
from .georef import geo_rtt_s, tcp_payload_rate_bps
from .plan import NetworkPlan
from .results import RunDir, atomic_write_bytes, git_commit, package_versions
from .scenario import from_schedule
from .pcapreplay import ReplayThreads
from .traffic import AGENT_PORT, AgentGroup, BackgroundFlows, ProbeMesh

LEAD_S = 2.0             # wall time between starting the traffic and the clock's step 0
FUTURE_HORIZON_S = 5.0   # how far ahead the controller is told the schedule (predictive)
MAX_FUTURE_STEPS = 20


def write_table(run_dir: RunDir, name: str, df: pd.DataFrame) -> None:
    """``name.parquet`` and ``name.csv`` (same content), each written atomically."""
    import io
    path = run_dir.path / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(run_dir.path / f"{name}.csv", df.to_csv(index=False).encode())


@dataclass
class Scenario:
    """What every algorithm of a run shares."""

    schedule: object
    plan: NetworkPlan
    timeline: LinkTimeline
    probe_pairs: list[tuple[str, str]]
    geo_rtt_s: np.ndarray            # (n_steps, n_pairs)
    workloads: list[tuple[str, object, list[str]]]   # (label, expanded plan, host per rank)
    background: list[tuple[str, str, float, float, float]]
    duration_s: float


def host_names_by_kind(plan: NetworkPlan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"compute": [], "ground": []}
    for h in plan.hosts:
        out.setdefault(h.kind, []).append(h.name)
    return out


def prepare(spec, run_dir: RunDir, log=print) -> Scenario:
    import topologies
    from testbed.workload import expand

    t = time.perf_counter()
    schedule = topologies.generate(spec.schedule_config())
    schedule.save(run_dir.path / "schedule.parquet")
    plan, timeline = from_schedule(schedule, spec.rate_scale)
    log(f"run: schedule {schedule.n_steps} steps x {len(plan.links)} links, {len(plan.switches)} switches, "
        f"{len(plan.hosts)} hosts ({time.perf_counter() - t:.1f} s)")
    by_kind = host_names_by_kind(plan)
    pairs = spec.probes.resolve_pairs(by_kind) if spec.probes else []
    node = {h.name: h.node_id for h in plan.hosts}
    geo = geo_rtt_s(plan, timeline, [(node[a], node[b]) for a, b in pairs]) if pairs else np.zeros((timeline.n_steps, 0))
    workloads = []
    for w in spec.workloads:
        wl = w.build().scaled(spec.rate_scale)
        hosts = w.place(by_kind) if hasattr(w, "place") else by_kind["compute"][: wl.n_ranks]
        if len(hosts) < wl.n_ranks:
            raise RunFailed(f"workload {w.label}: {wl.n_ranks} ranks but only {len(hosts)} compute hosts")
        workloads.append((w.label, expand(wl, seed=spec.seed), list(hosts[: wl.n_ranks])))
    background = [(b.src, b.dst, b.rate_bps, b.start_s, b.duration_s) for b in spec.background]
    duration_s = float(timeline.times_s[-1] - timeline.times_s[0])
    return Scenario(schedule, plan, timeline, pairs, geo, workloads, background, duration_s)


def _orbital(t_unix: np.ndarray, start_unix: float, timeline: LinkTimeline, speedup: float) -> np.ndarray:
    return (np.asarray(t_unix, float) - start_unix) * speedup + float(timeline.times_s[0])


def _step_of(t_s: np.ndarray, timeline: LinkTimeline) -> np.ndarray:
    return np.clip(np.searchsorted(timeline.times_s, t_s, side="right") - 1, 0, timeline.n_steps - 1)


def _run_with_shell(emu: Emulation, clock, on_step, start_unix: float):
    """The clock in a background thread, the interactive shell in the foreground."""
    import threading

    from .shell import EmulationShell
    result: dict = {}

    def replay():
        try:
            result["records"] = clock.run(on_step=on_step, start_unix=start_unix)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread below
            result["error"] = e

    th = threading.Thread(target=replay, name="clock", daemon=True)
    th.start()

    def link_state():
        up, delay = clock._applied_up, clock._applied_delay_s
        return {lk.link_id: (bool(up[lk.link_id]), float(delay[lk.link_id])) for lk in emu.plan.links}
    EmulationShell(emu, link_state).cmdloop()
    th.join()
    if "error" in result:
        raise result["error"]
    return result["records"]


def run_algorithm(spec, alg, sc: Scenario, run_dir: RunDir, backend: str, caps, log=print,
                  cli: bool = False) -> dict:
    """One algorithm on the scenario; writes its tables into ``run_dir/<label>/``."""
    from tqdm import tqdm

    adir = run_dir.path / alg.label
    adir.mkdir(parents=True, exist_ok=True)
    sub = RunDir(adir, run_dir.run_id)
    tl = sc.timeline
    future = min(MAX_FUTURE_STEPS, max(1, math.ceil(FUTURE_HORIZON_S / max(spec.schedule_config().step_s, 1e-9))))
    if not ALGORITHMS[alg.name].uses_future:
        future = 0          # the schedule's future only for algorithms that read it
    wall_s = sc.duration_s / spec.speedup
    with Emulation(sc.plan, alg.name, alg.params, log_dir=adir, backend=backend, run_id=run_dir.run_id,
                   caps=caps, lock=False) as emu:
        log(f"run: {alg.label}: network up in {sum(emu.network.timings_s.values()):.1f} s; "
            f"replaying {sc.duration_s:g} s of orbit ({wall_s:g} s wall)")
        clock = emu.clock(tl, speedup=spec.speedup, future_steps=future)
        clock.initial_state()
        start_unix = time.time() + LEAD_S
        probes = ProbeMesh(emu, sc.probe_pairs, spec.probes.rate_hz, wall_s + LEAD_S) if sc.probe_pairs else None
        # Workloads may share hosts (a DDP and an MoE job on the same cluster): one port each.
        groups = [(label, AgentGroup(emu, plan, hosts, adir / "agents" / label,
                                     timeout_s=max(120.0, 4 * wall_s), start_at_unix=start_unix,
                                     port=AGENT_PORT + k))
                  for k, (label, plan, hosts) in enumerate(sc.workloads)]
        flows = BackgroundFlows(emu, sc.background, start_unix) if sc.background else None
        captures = ReplayThreads(emu, spec.pcaps, adir / "pcap", start_unix, spec.speedup) if spec.pcaps else None
        stops = [g.stop for _, g in groups] + ([flows.stop] if flows else [])   # on error or Ctrl-C
        bar = tqdm(total=tl.n_steps - 1, desc=f"{alg.label}", unit="step", leave=False,
                   disable=not os.isatty(2))

        def on_step(rec):
            bar.update(1)
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
        outlasted_s = max(0.0, time.time() - end_unix)
        rtt = probes.collect() if probes else None
        thr = flows.collect() if flows else None
        try:
            replays = captures.collect() if captures else {}
        except RuntimeError as err:
            raise RunFailed(str(err)) from None
        emu.check_alive()
        teardown_unix = time.time()   # controller events after this are the tear-down's, not the run's
    summary = _write_tables(sub, alg, sc, records, rtt, thr, groups, start_unix, spec, outlasted_s, teardown_unix)
    _write_pcap_tables(sub, replays, start_unix, sc.timeline, spec.speedup, summary)
    return summary


def _write_pcap_tables(sub: RunDir, replays: dict, start_unix: float, tl: LinkTimeline, speedup: float,
                       summary: dict) -> None:
    """One ``pcap`` table per capture (``pcap-<label>`` when there are several): orbital send
    time ``t_s``, ends, size, one-way delay (NaN = lost), lateness against the capture's timing."""
    for label, df in replays.items():
        table = pd.DataFrame({"t_s": _orbital(df["t_sent"].to_numpy(), start_unix, tl, speedup),
                              "index": df["index"], "src": df["src"], "dst": df["dst"],
                              "size_bytes": df["size_bytes"], "one_way_s": df["one_way_s"],
                              "late_s": df["t_sent"] - df["t_due"]})
        write_table(sub, "pcap" if len(replays) == 1 else f"pcap-{label}", table)
        got = table["one_way_s"].dropna()
        summary.setdefault("pcap", {})[label] = {
            "packets": int(len(table)), "loss": float(table["one_way_s"].isna().mean()) if len(table) else None,
            "one_way_median_ms": float(got.median() * 1e3) if len(got) else None,
            "one_way_p99_ms": float(got.quantile(0.99) * 1e3) if len(got) else None,
            "late_p99_ms": float(table["late_s"].quantile(0.99) * 1e3) if len(table) else None}


def _write_tables(sub: RunDir, alg, sc: Scenario, records, rtt, thr, groups, start_unix, spec, outlasted_s,
                  until_unix: float) -> dict:
    tl = sc.timeline
    write_table(sub, "clock", pd.DataFrame([r.__dict__ for r in records]))
    summary: dict = {"steps": len(records), "workload_outlasted_schedule_s": outlasted_s}
    if records:
        summary.update(apply_median_ms=float(np.median([r.apply_s for r in records]) * 1e3),
                       lag_max_ms=float(max(r.lag_s for r in records) * 1e3),
                       flow_mods=int(sum(r.flow_mods for r in records)))
    if rtt is not None:
        t_s = _orbital(rtt["t_unix"].to_numpy(), start_unix, tl, spec.speedup)
        k = _step_of(t_s, tl)
        col = {pair: j for j, pair in enumerate(sc.probe_pairs)}
        j = np.array([col[(a, b)] for a, b in zip(rtt["src"], rtt["dst"])], dtype=int)
        table = pd.DataFrame({"t_s": t_s, "src": rtt["src"], "dst": rtt["dst"], "seq": rtt["seq"],
                              "rtt_s": rtt["rtt_s"], "geo_rtt_s": sc.geo_rtt_s[k, j] if len(j) else []})
        table = table[(table["t_s"] >= tl.times_s[0]) & (table["t_s"] <= tl.times_s[-1])]
        write_table(sub, "rtt", table)
        excess = (table["rtt_s"] - table["geo_rtt_s"]).dropna()
        summary.update(probes=int(len(table)), loss=float(table["rtt_s"].isna().mean()) if len(table) else None,
                       rtt_excess_median_ms=float(excess.median() * 1e3) if len(excess) else None,
                       rtt_excess_p99_ms=float(excess.quantile(0.99) * 1e3) if len(excess) else None)
    paths, util = _controller_tables(sub.path / "controller-steps.jsonl", sc.plan, start_unix, tl, spec.speedup,
                                     until_unix)
    write_table(sub, "paths", paths)
    write_table(sub, "link_util", util)
    summary["path_changes"] = int(max(0, len(paths) - paths[["src", "dst"]].drop_duplicates().shape[0])) if len(paths) else 0
    if thr is not None:
        thr = thr.assign(t_s=_orbital(thr["t_unix"].to_numpy(), start_unix, tl, spec.speedup))
        write_table(sub, "throughput", thr[["t_s", "src", "dst", "bps"]])
    for label, g in groups:
        latency = _rank_latency(sc, g)
        s = g.summary(rate_bps=_min_rate(sc.plan), latency_s=latency)
        for name in ("collectives", "iterations", "transfers"):
            df = getattr(s, name).assign(workload=label)
            write_table(sub, name if len(groups) == 1 else f"{name}-{label}", df)
        coll = s.collectives
        if len(coll):
            per = coll.groupby([c for c in ("instance", "op") if c in coll.columns] or ["rank"])["duration_s"].max()
            summary.setdefault("workloads", {})[label] = {
                "start_late_s": g.start_late_s(start_unix),   # agents began this long after step 0
                "collectives": int(len(per)), "collective_mean_s": float(per.mean()),
                "collective_p99_s": float(per.quantile(0.99)),
                "slowdown_mean": float(coll["slowdown"].mean()) if "slowdown" in coll else None}
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


def _controller_tables(path: Path, plan: NetworkPlan, start_unix: float, tl: LinkTimeline,
                       speedup: float, until_unix: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paths and link utilisation from the controller's log, up to ``until_unix`` (when
    the network's tear-down began: its ports going down are not routing events)."""
    host_of_switch = {h.switch: h.name for h in plan.hosts}
    paths, util = [], []
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["t_wall"] >= until_unix:
                continue
            t_s = float(_orbital(np.array([rec["t_wall"]]), start_unix, tl, speedup)[0])
            if rec.get("event") == "paths":
                for key, p in rec["paths"].items():
                    a, b = map(int, key.split("-"))
                    paths.append((max(t_s, float(tl.times_s[0])), host_of_switch[a], host_of_switch[b], p,
                                  p.count("-")))
                for key in rec.get("unreachable", []):
                    a, b = map(int, key.split("-"))
                    paths.append((max(t_s, float(tl.times_s[0])), host_of_switch[a], host_of_switch[b], "", -1))
            elif rec.get("event") == "utilisation":
                for key, u in rec["links"].items():
                    a, b = map(int, key.split("-"))
                    util.append((t_s, a, b, float(u)))
    return (pd.DataFrame(paths, columns=["t_s", "src", "dst", "path", "hops"]),
            pd.DataFrame(util, columns=["t_s", "a", "b", "utilisation"]))


def run_experiment(spec, results_root: Path | None = None, log=print, cli: bool = False) -> Path:
    """Runs every algorithm of ``spec``; returns the run folder."""
    from .tracking import RunLock

    caps = probe.require_runnable()
    backend = probe.choose_backend(caps, spec.backend)
    root = Path(results_root) if results_root else Path(spec.output_dir)
    with RunLock():
        run_dir = RunDir.create(root / spec.name)
        log(f"run: {spec.name} -> {run_dir.path}")
        manifest = {
            "experiment": spec.name, "run_id": run_dir.run_id, "spec": spec.raw, "spec_path": str(spec.path),
            "seed": spec.seed, "git_commit": git_commit(), "versions": package_versions(),
            "backend": backend, "delay_emulated": True, "ovs_datapath": probe.choose_datapath(caps),
            "rate_scale": spec.rate_scale, "speedup": spec.speedup,
            "scaling": "link rates = capacity_bps x rate_scale; workload bytes x rate_scale; "
                       "propagation delays and compute times unscaled",
            "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "algorithms": [a.label for a in spec.algorithms], "schedule": "schedule.parquet",
            "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        run_dir.write_json("manifest.json", manifest)
        sc = prepare(spec, run_dir, log)
        manifest.update(epoch=sc.schedule.epoch.isoformat(), step_s=float(sc.schedule.step_s))
        run_dir.write_json("manifest.json", manifest)
        summary = {"algorithms": {}}
        for alg in spec.algorithms:
            summary["algorithms"][alg.label] = run_algorithm(spec, alg, sc, run_dir, backend, caps, log, cli=cli)
            run_dir.write_json("summary.json", summary)
        run_dir.complete()
    try:
        from .report import make_report
    except ImportError:
        log("run: report module not available; tables written, no plots")
    else:
        make_report(run_dir.path)
    log(f"run: done: {run_dir.path}")
    return run_dir.path

"""Writes a realistic synthetic run folder following the results contract (issue 7), so
the report can be tested without an emulation.

The schedule is real (the ``test4x4`` preset, 20 s, one ground station); every table is
derived from it: paths are real shortest paths (by delay, by hop count, or alternating),
RTTs are the chosen path's propagation RTT plus queueing noise, ``geo_rtt_s`` the
schedule's shortest-path RTT. Nothing here needs root or a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

ALGORITHMS = ("min_delay", "min_hop", "load_aware")
TABLES = ("clock", "rtt", "paths", "collectives", "iterations", "transfers", "throughput", "link_util", "pcap")
PROBE_INTERVAL_S = 0.5
#: One pair is unreachable for a second (path "", hops -1, geo_rtt_s inf, probes lost),
#: as the runner records a partitioned pair.
OUTAGE_S = (10.0, 11.0)


#: The synthetic delay line's read-back (time frames were held vs their configured delay), from
#: which the fixture's manifest derives ``delay_emulated`` as a real run's manifest does.
FIXTURE_HELD_NS, FIXTURE_CONFIGURED_NS = 5_020_000, 5_000_000


def OUTAGE_PAIR_NAMES(names: dict[int, str]) -> tuple[str, str]:
    hosts = sorted(names.values())
    return ("Paris", next(n for n in hosts if n != "Paris"))


def make_schedule():
    import topologies
    return topologies.generate(topologies.ScheduleConfig(
        preset="test4x4", duration_s=20, step_s=1, compute={"every_k": 4},
        ground_stations=(("Paris", 48.85, 2.35),)))


#: A battery small enough that the fixture's 20 s show it: the compute satellite in eclipse
#: (node 4 of the test4x4 schedule) drains to its reserve and throttles, the others top up.
FIXTURE_POWER = dict(solar_w=2000.0, battery_wh=0.5, initial_soc=0.9, bus_w=300.0, accelerator_w=700.0,
                     policy="throttle", throttle_fraction=0.25, reserve_soc=0.2)


def power_frame(schedule) -> pd.DataFrame:
    """The runner's ``power`` table for ``schedule``'s compute satellites (testbed.power.evaluate)."""
    from testbed.power import PowerSpec, evaluate
    nodes = schedule.nodes
    compute = [int(i) for i in nodes.loc[nodes["kind"] == "compute", "node_id"]]
    names = dict(zip(nodes["node_id"].astype(int), nodes["name"].astype(str)))
    state = evaluate(PowerSpec(**FIXTURE_POWER), schedule.sunlit[:, compute], schedule.step_s)
    n_steps = len(schedule.times_s)
    return pd.DataFrame({
        "t_s": np.repeat(np.asarray(schedule.times_s, float), len(compute)),
        "host": np.tile([names[n] for n in compute], n_steps), "node": np.tile(compute, n_steps),
        "sunlit": state.sunlit.ravel(), "soc": state.soc.ravel(), "available_w": state.available_w.ravel(),
        "clock_fraction": state.clock_fraction.ravel()})


def fixture_faults(trial: int) -> pd.DataFrame:
    """What the runner records for a spec with a lost laser at 5 s, a controller outage 12-14 s
    and compute resets (one per trial, on node 4 at 8 + trial s, 2 s each)."""
    return pd.DataFrame([(5.0, np.inf, "laser", 1, "laser link 1-2 lost"),
                         (8.0 + trial, 10.0 + trial, "compute_reset", 4, "accelerator reset for 2 s (outside the SAA)"),
                         (12.0, 14.0, "controller_outage", -1, "controller unreachable for 2 s")],
                        columns=["t_s", "end_s", "kind", "node", "detail"])


def _write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_parquet(folder / f"{name}.parquet", index=False)
    frame.to_csv(folder / f"{name}.csv", index=False)


def _path_delay_s(graph: nx.Graph, path: list[int]) -> float:
    return float(sum(graph.edges[u, v]["delay_s"] for u, v in zip(path[:-1], path[1:])))


def _routes(schedule, hosts: list[int]) -> dict:
    """Per step: graph, and per ordered host pair the min-delay and min-hop paths."""
    out = []
    for step in range(schedule.n_steps):
        graph = schedule.graph_at(step)
        routes = {}
        for s in hosts:
            for d in hosts:
                if s == d:
                    continue
                try:
                    by_delay = nx.shortest_path(graph, s, d, weight="delay_s")
                    by_hop = nx.shortest_path(graph, s, d)
                except nx.NetworkXNoPath:
                    continue
                routes[(s, d)] = (by_delay, by_hop)
        out.append((graph, routes))
    return out


def _tables(schedule, routes, hosts, names, index: int, label: str, rng,
            workload: str = "ddp", outage: bool = True, rtt_shift_s: float = 0.0) -> dict[str, pd.DataFrame]:
    queue_ms = (0.15, 0.4, 0.25, 0.3)[index % 4]
    loss = (0.005, 0.02, 0.01, 0.015)[index % 4]
    rows_rtt, rows_paths, last = [], [], {}
    n_steps = schedule.n_steps
    probe_times = np.arange(0.0, n_steps * schedule.step_s, PROBE_INTERVAL_S)
    seq = {}
    for t in probe_times:
        step = min(int(t // schedule.step_s), n_steps - 1)
        graph, pair_routes = routes[step]
        for (s, d), (by_delay, by_hop) in pair_routes.items():
            if label == "min_hop":
                path = by_hop
            elif label == "load_aware":
                path = by_hop if (step // 4) % 2 else by_delay
            else:
                path = by_delay
            key = (names[s], names[d])
            text = "-".join(map(str, path))
            cut = outage and key == OUTAGE_PAIR_NAMES(names) and OUTAGE_S[0] <= t < OUTAGE_S[1]
            if cut:                         # as the runner writes an unreachable pair
                text, path = "", None
            if last.get(key) != text:
                rows_paths.append((t, key[0], key[1], text, len(path) - 1 if path else -1))
                last[key] = text
            if cut:
                geo, rtt = np.inf, np.nan
            else:
                geo = 2 * _path_delay_s(graph, by_delay)
                rtt = 2 * _path_delay_s(graph, path) + rng.exponential(queue_ms * 1e-3) + 50e-6 + rtt_shift_s
                if rng.random() < loss:
                    rtt = np.nan
            seq[key] = seq.get(key, -1) + 1
            rows_rtt.append((t, key[0], key[1], seq[key], rtt, geo))
    rtt = pd.DataFrame(rows_rtt, columns=["t_s", "src", "dst", "seq", "rtt_s", "geo_rtt_s"])
    paths = pd.DataFrame(rows_paths, columns=["t_s", "src", "dst", "path", "hops"])

    steps = np.arange(n_steps)
    clock = pd.DataFrame({
        "step": steps, "t_s": steps * schedule.step_s,
        "delay_changes": rng.integers(20, 40, n_steps), "links_up": rng.integers(0, 2, n_steps),
        "links_down": rng.integers(0, 2, n_steps), "apply_s": rng.uniform(1e-3, 5e-3, n_steps),
        "controller_s": rng.uniform(1e-3, 1e-2, n_steps), "lag_s": rng.uniform(0, 2e-3, n_steps),
        "flow_mods": rng.integers(0, 10 * (index + 1), n_steps)})

    ranks = len([h for h in hosts if names[h] != "Paris"])
    rows_coll, rows_it, rows_xfer = [], [], []
    instance = 0
    for it in range(4):
        t0 = 2.0 + 4.0 * it
        for k in range(5):
            kind = "all_reduce" if k < 4 else "all_to_all"
            ideal = 0.05 if kind == "all_reduce" else 0.02
            size = 1 << (20 + k % 3)
            for r in range(ranks):
                dur = ideal * (1.0 + 0.2 * index + rng.exponential(0.3 + 0.2 * index))
                start = t0 + 0.3 * k + rng.uniform(0, 0.01)
                rows_coll.append({"rank": r, "op": 2 * k + 1, "instance": instance, "name": f"grad{k}",
                                  "iteration": it, "start_time_s": start, "end_time_s": start + dur,
                                  "duration_s": dur, "kind": kind, "algorithm": "ring" if k < 4 else "direct",
                                  "group_size": ranks, "size_bytes": size, "algbw_bps": 8 * size / dur,
                                  "busbw_bps": 8 * size / dur * 1.5, "busbw_factor": 1.5,
                                  "bytes_sent": size, "bytes_received": size, "ideal_s": ideal,
                                  "slowdown": dur / ideal})
                rows_xfer.append({"rank": r, "op": 2 * k + 1, "step": k, "xfer": instance * ranks + r,
                                  "direction": "send", "peer": (r + 1) % ranks, "size_bytes": size // ranks,
                                  "start_time_s": start, "end_time_s": start + dur / 2, "duration_s": dur / 2})
            instance += 1
        for r in range(ranks):
            ideal = 3.0
            dur = ideal * (1.0 + 0.05 * index + rng.exponential(0.03))
            rows_it.append({"rank": r, "iteration": it, "start_time_s": t0, "end_time_s": t0 + dur,
                            "duration_s": dur, "compute_s": 2.8, "comm_s": 0.6,
                            "exposed_comm_s": max(0.0, dur - 2.8), "ideal_s": ideal,
                            "slowdown": dur / ideal})

    flows = [(names[hosts[-1]], names[hosts[0]]), (names[hosts[1]], names[hosts[2]])]
    rows_tp = [(float(t), s, d, rng.normal(150e6 - 20e6 * index, 8e6))
               for t in np.arange(1.0, n_steps, 1.0) for s, d in flows]
    throughput = pd.DataFrame(rows_tp, columns=["t_s", "src", "dst", "bps"])

    pairs = schedule.links[["a", "b"]].drop_duplicates().to_numpy()
    directed = np.vstack([pairs, pairs[:, ::-1]])
    base = rng.beta(1.5, 4.0, len(directed)) * (1.0 - 0.2 * index)
    util = np.clip(base[None, :] + rng.normal(0, 0.05, (n_steps, len(directed))), 0, 1)
    link_util = pd.DataFrame({"t_s": np.repeat(steps * schedule.step_s, len(directed)),
                              "a": np.tile(directed[:, 0], n_steps), "b": np.tile(directed[:, 1], n_steps),
                              "utilisation": util.ravel()})
    work = {name: pd.DataFrame(rows).assign(workload=workload)   # the runner tags every row
            for name, rows in (("collectives", rows_coll), ("iterations", rows_it), ("transfers", rows_xfer))}
    sent = np.arange(0.5, n_steps * schedule.step_s - 0.5, 0.05)
    one_way = np.where(rng.random(sent.size) < 0.01, np.nan, 0.1 + rng.exponential(2e-4, sent.size))
    pcap = pd.DataFrame({"t_s": sent, "index": np.arange(sent.size), "src": flows[0][0], "dst": flows[0][1],
                         "size_bytes": rng.integers(60, 1500, sent.size), "one_way_s": one_way,
                         "late_s": rng.uniform(0, 1e-4, sent.size)})
    return {"clock": clock, "rtt": rtt, "paths": paths, **work,
            "throughput": throughput, "link_util": link_util, "pcap": pcap}


def _wall_clock(frame: pd.DataFrame, start_unix: float) -> pd.DataFrame:
    """The new contract: wall ``*_time_s`` in Unix s, ``t_s`` the orbital start."""
    if "start_time_s" not in frame.columns:
        return frame
    return frame.assign(t_s=frame["start_time_s"], start_time_s=frame["start_time_s"] + start_unix,
                        end_time_s=frame["end_time_s"] + start_unix)


def write_run(root: Path, *, experiment: str = "synthetic", run_id: str = "20250101T000000Z-ab12",
              algorithms: tuple[str, ...] = ALGORITHMS, omit: tuple[str, ...] = (),
              empty: tuple[str, ...] = (), incomplete: bool = False, ran: int | None = None,
              workloads: tuple[str, ...] = ("ddp",), schedule=None, seed: int = 7,
              trials: int | None = None, speedup: float = 1.0, trial_seeds: list[int] | None = None,
              profiles: dict[str, int] | None = None, outage: bool = True, rtt_shift_s: float = 0.0,
              power: bool = False, faults: bool = False) -> Path:
    """Write ``root/<experiment>/<run_id>/`` and return it.

    ``omit``: tables not written for any algorithm; ``empty``: tables written with their
    columns but no rows; ``incomplete``: leave the INCOMPLETE marker; ``ran``: only the
    first ``ran`` algorithms have a results folder (as after an interrupted run);
    ``workloads``: with more than one, the workload tables are written once per workload
    as ``<table>-<workload>`` (the runner's naming). ``trials``: None writes the layout
    of runs before trials (tables in ``<label>/``); N writes ``<label>/trial-<k>/`` with
    a ``trial`` column, and the manifest's ``trials``, ``trial_seeds`` (``trial_seeds``
    or seed + k), rotated ``trial_order`` and ``time_base``. ``power``: a run-level power
    table (:data:`FIXTURE_POWER` evaluated on the schedule's sunlit flags); ``faults``: a
    faults table per algorithm and trial (:func:`fixture_faults`). Paths are chosen by label:
    ``min_hop`` by hops, ``load_aware`` alternating, any other label by delay.
    """
    schedule = schedule if schedule is not None else make_schedule()
    run = root / experiment / run_id
    run.mkdir(parents=True)
    if incomplete:
        (run / "INCOMPLETE").write_text("this run did not finish; its files may be partial\n")
    schedule.save(run / "schedule.parquet")
    if power:
        _write_table(run, "power", power_frame(schedule))
    kinds = schedule.nodes["kind"].to_numpy()
    hosts = [int(i) for i in np.flatnonzero((kinds == "compute") | (kinds == "ground"))]
    names = dict(zip(schedule.nodes["node_id"].astype(int), schedule.nodes["name"].astype(str)))
    routes = _routes(schedule, hosts)
    n_trials = 1 if trials is None else trials
    seeds = list(trial_seeds) if trial_seeds is not None else [seed + k for k in range(n_trials)]
    labels = list(algorithms[:ran if ran is not None else len(algorithms)])
    order = [labels[k % len(labels):] + labels[:k % len(labels)] for k in range(n_trials)] if labels else []
    summary: dict = {}
    time_base = {}
    for trial in range(n_trials):
        rng = np.random.default_rng(seeds[trial])
        for index, label in enumerate(algorithms):
            if label not in labels:
                continue
            folder = run / label if trials is None else run / label / f"trial-{trial}"
            folder.mkdir(parents=True)
            start_unix = 1.7e9 + 100.0 * trial + 30.0 * order[trial].index(label)
            profile = (profiles or {}).get(label, index)
            for w, workload in enumerate(workloads):
                tables = _tables(schedule, routes, hosts, names, profile, label, rng, workload, outage, rtt_shift_s)
                for name in TABLES:
                    per_workload = name in ("collectives", "iterations", "transfers")
                    if name in omit or (w > 0 and not per_workload) or (name == "pcap" and trials is None):
                        continue
                    frame = tables[name].iloc[0:0] if name in empty else tables[name]
                    if trials is not None:
                        frame = _wall_clock(frame, start_unix).assign(trial=trial)
                    _write_table(folder, f"{name}-{workload}" if per_workload and len(workloads) > 1 else name,
                                 frame)
            if faults:
                _write_table(folder, "faults", fixture_faults(trial).assign(trial=trial))
            entry = {"probes": int(len(tables["rtt"])), "flow_mods": int(tables["clock"]["flow_mods"].sum())}
            summary.setdefault(label, {"trials": {}})["trials"][str(trial)] = entry
            time_base[f"{label}/{trial}"] = {"start_unix": start_unix, "t_first_s": 0.0, "speedup": speedup}
    if trials is None:
        summary = {label: entry["trials"]["0"] for label, entry in summary.items()}
    manifest = {
        "experiment": experiment, "run_id": run_id,
        "spec": {"constellation": {"preset": "test4x4"}, "algorithms": list(algorithms)},
        "seed": seed, "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "backend": "delayline", "delay_emulated": FIXTURE_HELD_NS >= 0.9 * FIXTURE_CONFIGURED_NS,
        "ovs_datapath": "user",
        "rate_scale": 0.001, "speedup": speedup, "host": {"cpus": 2, "kernel": "6.1.0"},
        "algorithms": list(algorithms), "schedule": "schedule.parquet",
        "epoch": schedule.meta["epoch"], "step_s": float(schedule.step_s),
    }
    if trials is not None:
        manifest.update(trials=trials, trial_seeds=seeds, trial_order=order if ran is None else
                        [o + [l for l in algorithms if l not in o] for o in order], time_base=time_base)
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    from testbed.report.stats import summary_statistics
    out = {"algorithms": summary}
    if trials is not None:
        out["statistics"] = summary_statistics(summary, manifest["trial_order"])
    (run / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    return run

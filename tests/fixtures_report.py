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
TABLES = ("clock", "rtt", "paths", "collectives", "iterations", "transfers", "throughput", "link_util")
PROBE_INTERVAL_S = 0.5
#: One pair is unreachable for a second (path "", hops -1, geo_rtt_s inf, probes lost),
#: as the runner records a partitioned pair.
OUTAGE_S = (10.0, 11.0)


def OUTAGE_PAIR_NAMES(names: dict[int, str]) -> tuple[str, str]:
    hosts = sorted(names.values())
    return ("Paris", next(n for n in hosts if n != "Paris"))


def make_schedule():
    import topologies
    return topologies.generate(topologies.ScheduleConfig(
        preset="test4x4", duration_s=20, step_s=1, compute={"every_k": 4},
        ground_stations=(("Paris", 48.85, 2.35),)))


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
            workload: str = "ddp") -> dict[str, pd.DataFrame]:
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
            outage = key == OUTAGE_PAIR_NAMES(names) and OUTAGE_S[0] <= t < OUTAGE_S[1]
            if outage:                         # as the runner writes an unreachable pair
                text, path = "", None
            if last.get(key) != text:
                rows_paths.append((t, key[0], key[1], text, len(path) - 1 if path else -1))
                last[key] = text
            if outage:
                geo, rtt = np.inf, np.nan
            else:
                geo = 2 * _path_delay_s(graph, by_delay)
                rtt = 2 * _path_delay_s(graph, path) + rng.exponential(queue_ms * 1e-3) + 50e-6
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
    return {"clock": clock, "rtt": rtt, "paths": paths, **work,
            "throughput": throughput, "link_util": link_util}


def write_run(root: Path, *, experiment: str = "synthetic", run_id: str = "20250101T000000Z-ab12",
              algorithms: tuple[str, ...] = ALGORITHMS, omit: tuple[str, ...] = (),
              empty: tuple[str, ...] = (), incomplete: bool = False, ran: int | None = None,
              workloads: tuple[str, ...] = ("ddp",), schedule=None, seed: int = 7) -> Path:
    """Write ``root/<experiment>/<run_id>/`` and return it.

    ``omit``: tables not written for any algorithm; ``empty``: tables written with their
    columns but no rows; ``incomplete``: leave the INCOMPLETE marker; ``ran``: only the
    first ``ran`` algorithms have a results folder (as after an interrupted run);
    ``workloads``: with more than one, the workload tables are written once per workload
    as ``<table>-<workload>`` (the runner's naming).
    """
    schedule = schedule if schedule is not None else make_schedule()
    run = root / experiment / run_id
    run.mkdir(parents=True)
    if incomplete:
        (run / "INCOMPLETE").write_text("this run did not finish; its files may be partial\n")
    schedule.save(run / "schedule.parquet")
    kinds = schedule.nodes["kind"].to_numpy()
    hosts = [int(i) for i in np.flatnonzero((kinds == "compute") | (kinds == "ground"))]
    names = dict(zip(schedule.nodes["node_id"].astype(int), schedule.nodes["name"].astype(str)))
    routes = _routes(schedule, hosts)
    rng = np.random.default_rng(seed)
    summary = {}
    for index, label in enumerate(algorithms[:ran if ran is not None else len(algorithms)]):
        folder = run / label
        folder.mkdir()
        for w, workload in enumerate(workloads):
            tables = _tables(schedule, routes, hosts, names, index, label, rng, workload)
            for name in TABLES:
                per_workload = name in ("collectives", "iterations", "transfers")
                if name in omit or (w > 0 and not per_workload):
                    continue
                frame = tables[name].iloc[0:0] if name in empty else tables[name]
                _write_table(folder, f"{name}-{workload}" if per_workload and len(workloads) > 1 else name,
                             frame)
        summary[label] = {"probes": int(len(tables["rtt"])), "flow_mods": int(tables["clock"]["flow_mods"].sum())}
    manifest = {
        "experiment": experiment, "run_id": run_id,
        "spec": {"constellation": {"preset": "test4x4"}, "algorithms": list(algorithms)},
        "seed": seed, "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "backend": "delayline", "delay_emulated": True, "ovs_datapath": "user",
        "rate_scale": 0.001, "speedup": 1.0, "host": {"cpus": 2, "kernel": "6.1.0"},
        "algorithms": list(algorithms), "schedule": "schedule.parquet",
        "epoch": schedule.meta["epoch"], "step_s": float(schedule.step_s),
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (run / "summary.json").write_text(json.dumps({"algorithms": summary}, indent=2) + "\n")
    return run

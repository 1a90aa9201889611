"""Result tables of one algorithm's run: what the traffic and the controller recorded, as
tidy tables in orbital time, plus the per-algorithm summary (see results/README.md).

Every table is written twice with the same content (``NAME.parquet`` and ``NAME.csv``),
each atomically. Wall-clock stamps (Unix s) of what was measured become orbital ``t_s``
through :class:`TimeBase`: ``t_s = (t_unix - start_unix) x speedup + t_first``, where
``speedup`` is orbital seconds per *wall* second (the spec's speedup / time dilation).
Measured durations arrive here already in emulated seconds (testbed/net/dilation.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controllers import steplog
from testbed.net.clock import LinkTimeline
from testbed.net.dilation import emulated_s
from testbed.net.plan import NetworkPlan
from testbed.results.writer import RunDir
from testbed.system.files import atomic_write


def write_table(run_dir: RunDir, name: str, df: pd.DataFrame) -> None:
    """``name.parquet`` and ``name.csv`` (same content), each written atomically; in a trial's
    folder the table gets the ``trial`` column first."""
    if run_dir.trial is not None:
        df = df.assign(trial=run_dir.trial)[["trial", *[c for c in df.columns if c != "trial"]]]
    path = run_dir.path / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write(path, buf.getvalue())
    atomic_write(run_dir.path / f"{name}.csv", df.to_csv(index=False).encode())


@dataclass(frozen=True)
class TimeBase:
    """Maps wall-clock Unix seconds of a run to orbital seconds of its schedule."""

    start_unix: float          # wall time of the schedule's first step
    timeline: LinkTimeline
    speedup: float             # orbital seconds per wall second (spec speedup / time dilation)

    def orbital(self, t_unix) -> np.ndarray:
        return (np.asarray(t_unix, float) - self.start_unix) * self.speedup + float(self.timeline.times_s[0])

    def step_of(self, t_s) -> np.ndarray:
        tl = self.timeline
        return np.clip(np.searchsorted(tl.times_s, t_s, side="right") - 1, 0, tl.n_steps - 1)

    def within(self, table: pd.DataFrame) -> pd.DataFrame:
        """Rows whose ``t_s`` lies inside the schedule's window."""
        tl = self.timeline
        return table[(table["t_s"] >= tl.times_s[0]) & (table["t_s"] <= tl.times_s[-1])]


def clock_table(sub: RunDir, records, summary: dict, max_lag_s: float) -> None:
    """The clock's step records; ``kept_time`` is False when any step's link changes were in
    force more than ``max_lag_s`` after its due time: the replay then does not stand for the
    schedule. ``done_lag_max_ms`` is the largest lag until a step was done, the controller's
    confirmation included (rule installation, not the schedule's timing).

    Per step also ``install_s`` (the controller's decision until its last barrier reply, as
    the controller saw it through the control relay; 0 where it was not asked) and
    ``unreachable_switches`` (no control path from its location); the summary gets the
    median and largest install time over the steps that installed rules."""
    write_table(sub, "clock", pd.DataFrame([r.__dict__ for r in records]))
    summary.update(steps=len(records), max_lag_ms=max_lag_s * 1e3)
    if records:
        lag = np.array([r.lag_s for r in records])
        summary.update(apply_median_ms=float(np.median([r.apply_s for r in records]) * 1e3),
                       lag_p50_ms=float(np.median(lag) * 1e3), lag_max_ms=float(lag.max() * 1e3),
                       steps_late=int((lag > max_lag_s).sum()), kept_time=bool(lag.max() <= max_lag_s),
                       done_lag_max_ms=float(max(r.done_lag_s for r in records) * 1e3),
                       flow_mods=int(sum(r.flow_mods for r in records)),
                       unreachable_switch_steps=int(sum(r.unreachable_switches for r in records)))
        install = np.array([r.install_s for r in records if r.flow_mods])
        summary.update(install_median_ms=float(np.median(install) * 1e3) if len(install) else None,
                       install_max_ms=float(install.max() * 1e3) if len(install) else None)


def rtt_table(sub: RunDir, rtt: pd.DataFrame, tb: TimeBase, pairs: list[tuple[str, str]], geo_rtt_s: np.ndarray,
              summary: dict) -> None:
    """Probe samples with the geometric RTT of their step and pair (``geo_rtt_s``: (n_steps, n_pairs)).

    ``rtt``: :func:`testbed.traffic.probes.account` rows. The table keeps the round trip, the
    forward and return one-way delays (s, NaN = lost) and whether the reply came out of order.
    ``routable``: the schedule had a path for the pair both when the probe was sent and when
    its reply was due (send time + geometric RTT); a probe lost without one was lost to a
    coverage gap or a partition, which no routing algorithm can avoid.
    """
    t_s = tb.orbital(rtt["t_unix"].to_numpy())
    k = tb.step_of(t_s)
    col = {pair: j for j, pair in enumerate(pairs)}
    j = np.array([col[(a, b)] for a, b in zip(rtt["src"], rtt["dst"])], dtype=int)
    table = pd.DataFrame({"t_s": t_s, "src": rtt["src"], "dst": rtt["dst"], "seq": rtt["seq"],
                          "rtt_s": rtt["rtt_s"], "one_way_s": rtt["one_way_s"], "back_s": rtt["back_s"],
                          "reordered": rtt["reordered"].astype(bool),
                          "geo_rtt_s": geo_rtt_s[k, j] if len(j) else []})
    geo = table["geo_rtt_s"].to_numpy(float)
    due = tb.step_of(t_s + np.nan_to_num(geo))
    table["routable"] = np.isfinite(geo) & (np.isfinite(geo_rtt_s[due, j]) if len(j) else np.zeros(0, bool))
    table = tb.within(table)
    write_table(sub, "rtt", table)
    excess = (table["rtt_s"] - table["geo_rtt_s"]).dropna()
    lost = table["rtt_s"].isna()
    summary.update(probes=int(len(table)), loss=float(lost.mean()) if len(table) else None,
                   loss_routable=float(lost[table["routable"]].mean()) if table["routable"].any() else None,
                   lost_no_route=int((lost & ~table["routable"]).sum()),
                   reordered=int(table["reordered"].sum()),
                   rtt_excess_median_ms=float(excess.median() * 1e3) if len(excess) else None,
                   rtt_excess_p99_ms=float(excess.quantile(0.99) * 1e3) if len(excess) else None)


def controller_tables(sub: RunDir, plan: NetworkPlan, tb: TimeBase, until_unix: float, summary: dict) -> None:
    """``paths`` and ``link_util`` from the controller's step log, up to ``until_unix`` (when the
    network's tear-down began: its ports going down are not routing events)."""
    host_of_switch = {h.switch: h.name for h in plan.hosts}
    t_first = float(tb.timeline.times_s[0])
    paths, util = [], []
    for rec in steplog.read_records(sub.path / steplog.FILE_NAME, until_unix):
        t_s = float(tb.orbital(rec["t_wall"]))
        if rec.get("event") == "paths":
            for key, p in rec["paths"].items():
                a, b = steplog.parse_pair_key(key)
                paths.append((max(t_s, t_first), host_of_switch[a], host_of_switch[b], p, steplog.path_hops(p)))
            for key in rec.get("unreachable", []):
                a, b = steplog.parse_pair_key(key)
                paths.append((max(t_s, t_first), host_of_switch[a], host_of_switch[b], "", -1))
        elif rec.get("event") == "utilisation":
            for key, u in rec["links"].items():
                a, b = steplog.parse_pair_key(key)
                util.append((t_s, a, b, float(u)))
    paths_df = pd.DataFrame(paths, columns=["t_s", "src", "dst", "path", "hops"])
    write_table(sub, "paths", paths_df)
    write_table(sub, "link_util", pd.DataFrame(util, columns=["t_s", "a", "b", "utilisation"]))
    summary["path_changes"] = (int(max(0, len(paths_df) - paths_df[["src", "dst"]].drop_duplicates().shape[0]))
                               if len(paths_df) else 0)
    summary["unreachable_s"] = unreachable_s(paths_df, float(tb.timeline.times_s[-1]))


def unreachable_s(paths: pd.DataFrame, t_end_s: float) -> dict[str, float]:
    """Orbital seconds each host pair ("src->dst") had no installed path, from the ``paths``
    table (a row with ``hops == -1`` starts an outage; the pair's next row ends it)."""
    out: dict[str, float] = {}
    for (src, dst), rows in paths.sort_values("t_s", kind="stable").groupby(["src", "dst"], sort=True):
        t = rows["t_s"].to_numpy()
        ends = list(t[1:]) + [t_end_s]
        total = sum(max(0.0, e - a) for a, e, h in zip(t, ends, rows["hops"].to_numpy()) if h < 0)
        if total > 0:
            out[f"{src}->{dst}"] = float(total)
    return out


def flow_tables(sub: RunDir, tables, tb: TimeBase, summary: dict) -> None:
    """``throughput`` (per reporting interval) and ``flows`` (one row per background flow:
    completed or not, bytes, retransmits, longest stall); the summary counts flows that did
    not complete (a path outage is a result, not a failure)."""
    thr = tables.throughput.assign(t_s=tb.orbital(tables.throughput["t_unix"].to_numpy()))
    write_table(sub, "throughput", thr[["t_s", "src", "dst", "bps"]])
    write_table(sub, "flows", tables.flows)
    flows = tables.flows
    summary["flows"] = {"count": int(len(flows)), "completed": int(flows["completed"].sum()) if len(flows) else 0,
                        "longest_stall_s": float(flows["longest_stall_s"].max()) if len(flows) else None}


def workload_tables(sub: RunDir, label: str, s, n_workloads: int, start_late_s: float | None, tb: TimeBase,
                    summary: dict) -> None:
    """``collectives``, ``iterations``, ``transfers`` of one workload (``s``: its summary). Each
    row keeps its wall ``start_time_s``/``end_time_s`` and gains orbital ``t_s`` (start) and
    ``t_end_s``."""
    for name in ("collectives", "iterations", "transfers"):
        df = getattr(s, name).assign(workload=label)
        if "start_time_s" in df.columns:
            df.insert(0, "t_s", tb.orbital(df["start_time_s"].to_numpy()))
        if "end_time_s" in df.columns:
            df.insert(1, "t_end_s", tb.orbital(df["end_time_s"].to_numpy()))
        write_table(sub, name if n_workloads == 1 else f"{name}-{label}", df)
    coll = s.collectives
    if len(coll):
        per = coll.groupby([c for c in ("instance", "op") if c in coll.columns] or ["rank"])["duration_s"].max()
        summary.setdefault("workloads", {})[label] = {
            "start_late_s": start_late_s,   # agents began this long after step 0
            "collectives": int(len(per)), "collective_mean_s": float(per.mean()),
            "collective_p99_s": float(per.quantile(0.99)) if len(per) >= 100 else None}   # p99 needs 100


def pcap_tables(sub: RunDir, replays: dict[str, pd.DataFrame], tb: TimeBase, summary: dict,
                dilation: float = 1.0) -> None:
    """One ``pcap`` table per capture (``pcap-<label>`` when there are several): orbital send
    time ``t_s``, ends, size, one-way delay (NaN = lost), lateness against the capture's timing
    (both durations in emulated seconds: measured / ``dilation``)."""
    for label, df in replays.items():
        table = pd.DataFrame({"t_s": tb.orbital(df["t_sent"].to_numpy()),
                              "index": df["index"], "src": df["src"], "dst": df["dst"],
                              "size_bytes": df["size_bytes"], "one_way_s": emulated_s(df["one_way_s"], dilation),
                              "late_s": emulated_s(df["t_sent"] - df["t_due"], dilation)})
        write_table(sub, "pcap" if len(replays) == 1 else f"pcap-{label}", table)
        got = table["one_way_s"].dropna()
        summary.setdefault("pcap", {})[label] = {
            "packets": int(len(table)), "loss": float(table["one_way_s"].isna().mean()) if len(table) else None,
            "one_way_median_ms": float(got.median() * 1e3) if len(got) else None,
            "one_way_p99_ms": float(got.quantile(0.99) * 1e3) if len(got) else None,
            "late_p99_ms": float(table["late_s"].quantile(0.99) * 1e3) if len(table) else None}


def power_table(run_dir: RunDir, state, hosts, node_ids, times_s) -> None:
    """``power`` (run level, the same for every algorithm): per step and compute host, orbital
    ``t_s``, ``sunlit``, battery ``soc`` (0..1, at the step's start), ``available_w`` [W] and the
    accelerator's ``clock_fraction`` (0..1)."""
    n_steps, n_hosts = state.soc.shape
    write_table(run_dir, "power", pd.DataFrame({
        "t_s": np.repeat(np.asarray(times_s, float), n_hosts), "host": np.tile(list(hosts), n_steps),
        "node": np.tile(list(node_ids), n_steps), "sunlit": state.sunlit.ravel(), "soc": state.soc.ravel(),
        "available_w": state.available_w.ravel(), "clock_fraction": state.clock_fraction.ravel()}))


def faults_table(sub: RunDir, events, summary: dict) -> None:
    """``faults``: every scheduled fault as applied (orbital ``t_s`` and ``end_s``, ``kind``,
    ``node`` (-1: not a node), ``detail``); the summary counts them by kind."""
    df = pd.DataFrame([e.__dict__ for e in events], columns=["t_s", "end_s", "kind", "node", "detail"])
    write_table(sub, "faults", df)
    summary["faults"] = {str(k): int(n) for k, n in df["kind"].value_counts().items()}

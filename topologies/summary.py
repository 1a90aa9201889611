"""Numbers that describe a schedule, and shortest-path delays over it.

Everything here reads a :class:`Schedule` only, so it works the same on a
freshly generated schedule and on one loaded from its files.
"""

from __future__ import annotations

import numpy as np

from .schedule import SATELLITE_KINDS, Schedule


def up_transitions(schedule: Schedule) -> tuple[int, int]:
    """Number of (appear, disappear) events of usable links between consecutive steps.

    A link becoming ``up`` at step k > 0 (absent or acquiring at k-1) is one
    appearance; a usable link that is absent or down at the next step is one
    disappearance.
    """
    links = schedule.links
    up = links["up"].to_numpy()
    n, n_steps = schedule.n_nodes, schedule.n_steps
    key = links["a"].to_numpy(np.int64)[up] * n + links["b"].to_numpy(np.int64)[up]
    step = links["step"].to_numpy(np.int64)[up]
    if key.size == 0:
        return 0, 0
    order = np.sort(key * n_steps + step)
    key_sorted, step_sorted = np.divmod(order, n_steps)
    continues = (key_sorted[1:] == key_sorted[:-1]) & (step_sorted[1:] == step_sorted[:-1] + 1)
    starts = np.r_[True, ~continues]
    ends = np.r_[~continues, True]
    appear = int(np.count_nonzero(starts & (step_sorted > 0)))
    disappear = int(np.count_nonzero(ends & (step_sorted < n_steps - 1)))
    return appear, disappear


def coverage_gaps(schedule: Schedule) -> dict[str, list[tuple[float, float]]]:
    """Per ground station (by name), the intervals ``(start_s, end_s)`` of orbital time in
    which it has no usable ground link at all (no satellite in view, or none acquired yet);
    ``end_s`` is the first step with a link again, or the end of the window."""
    nodes = schedule.nodes
    ground = nodes[nodes["kind"] == "ground"]
    if ground.empty:
        return {}
    links = schedule.links
    gsl = links[(links["kind"] == "gsl").to_numpy() & links["up"].to_numpy()]
    times = np.asarray(schedule.times_s, float)
    end_s = float(times[-1] + schedule.step_s)
    out = {}
    for node_id, name in zip(ground["node_id"], ground["name"]):
        mine = gsl[(gsl["a"] == node_id) | (gsl["b"] == node_id)]
        covered = np.zeros(schedule.n_steps, bool)
        covered[mine["step"].to_numpy()] = True
        gaps, k = [], 0
        while k < schedule.n_steps:
            if covered[k]:
                k += 1
                continue
            j = k
            while j < schedule.n_steps and not covered[j]:
                j += 1
            gaps.append((float(times[k]), float(times[j]) if j < schedule.n_steps else end_s))
            k = j
        if gaps:
            out[str(name)] = gaps
    return out


def summarize(schedule: Schedule) -> dict:
    """Headline numbers of a schedule (JSON-friendly dict)."""
    links = schedule.links
    kinds = schedule.nodes["kind"].to_numpy()
    n_steps = schedule.n_steps
    per_step = np.bincount(links["step"].to_numpy(), minlength=n_steps)
    up_per_step = np.bincount(links["step"].to_numpy()[links["up"].to_numpy()],
                              minlength=n_steps)
    out = {
        "satellites": int(np.isin(kinds, SATELLITE_KINDS).sum()),
        "compute_satellites": int((kinds == "compute").sum()),
        "ground_stations": int((kinds == "ground").sum()),
        "steps": n_steps,
        "step_s": schedule.step_s,
        "duration_s": n_steps * schedule.step_s,
        "epoch": schedule.meta.get("epoch"),
        "links_per_step_min": int(per_step.min()),
        "links_per_step_max": int(per_step.max()),
        "up_links_per_step_min": int(up_per_step.min()),
        "up_links_per_step_max": int(up_per_step.max()),
    }
    for kind in ("isl", "gsl"):
        delay = links["delay_s"].to_numpy()[(links["kind"] == kind).to_numpy()]
        out[f"{kind}_delay_s_min"] = float(delay.min()) if delay.size else None
        out[f"{kind}_delay_s_max"] = float(delay.max()) if delay.size else None
    appear, disappear = up_transitions(schedule)
    minutes = max(n_steps - 1, 1) * schedule.step_s / 60.0 if n_steps > 1 else None
    out["link_appearances"] = appear
    out["link_disappearances"] = disappear
    out["link_changes_per_min"] = (appear + disappear) / minutes if minutes else 0.0
    compute = kinds == "compute"
    out["compute_sunlit_fraction"] = (float(schedule.sunlit[:, compute].mean())
                                      if compute.any() else None)
    sats = np.isin(kinds, SATELLITE_KINDS)
    out["satellite_sunlit_fraction"] = float(schedule.sunlit[:, sats].mean()) \
        if sats.any() else None
    if schedule.meta.get("laser_usage"):
        out["laser_usage"] = schedule.meta["laser_usage"]
    out["coverage_gaps"] = coverage_gaps(schedule)
    placement = schedule.meta.get("placement") or {}
    if placement.get("source") == "tle":
        out["tle_placed"] = placement.get("n_placed")
        out["tle_total"] = placement.get("n_total")
    return out


def format_summary(s: dict) -> str:
    """The summary as aligned text lines."""
    def ms(value):
        return "n/a" if value is None else f"{value * 1e3:.3f} ms"

    def pct(value):
        return "n/a (no compute satellites)" if value is None else f"{value * 100:.1f} %"

    lines = [
        f"satellites        {s['satellites']} ({s['compute_satellites']} compute), "
        f"ground stations {s['ground_stations']}",
        f"time              {s['steps']} steps x {s['step_s']:g} s from {s['epoch']}",
        f"links per step    min {s['links_per_step_min']}, max {s['links_per_step_max']} "
        f"(up: {s['up_links_per_step_min']}..{s['up_links_per_step_max']})",
        f"ISL delay         {ms(s['isl_delay_s_min'])} .. {ms(s['isl_delay_s_max'])}",
        f"GSL delay         {ms(s['gsl_delay_s_min'])} .. {ms(s['gsl_delay_s_max'])}",
        f"link changes      {s['link_changes_per_min']:.1f} per minute "
        f"({s['link_appearances']} up, {s['link_disappearances']} down)",
        f"compute sunlit    {pct(s['compute_sunlit_fraction'])}",
    ]
    if "tle_placed" in s:
        lines.append(f"TLE placement     {s['tle_placed']} of {s['tle_total']} satellites placed")
    for name, gaps in (s.get("coverage_gaps") or {}).items():
        shown = ", ".join(f"{a:g}-{b:g} s" for a, b in gaps[:6]) + (f" and {len(gaps) - 6} more" if len(gaps) > 6 else "")
        lines.append(f"WARNING: ground station {name} has no satellite link {shown}")
    return "\n".join(lines)


def resolve_node(schedule: Schedule, ref: str | int) -> int:
    """Node id from an id or a node name; raises ValueError if unknown."""
    if isinstance(ref, (int, np.integer)):
        node = int(ref)
    else:
        names = schedule.nodes["name"].astype(str).tolist()
        if ref in names:
            return names.index(ref)
        try:
            node = int(ref)
        except ValueError:
            raise ValueError(f"no node named {ref!r}") from None
    if not 0 <= node < schedule.n_nodes:
        raise ValueError(f"node id {node} out of range 0..{schedule.n_nodes - 1}")
    return node


def link_delay_series_s(schedule: Schedule, a: int, b: int) -> np.ndarray:
    """One-way delay of link (a, b) per step [s], NaN where it is not up. Shape (T,)."""
    a, b = min(a, b), max(a, b)
    links = schedule.links
    rows = ((links["a"].to_numpy() == a) & (links["b"].to_numpy() == b)
            & links["up"].to_numpy())
    out = np.full(schedule.n_steps, np.nan)
    out[links["step"].to_numpy()[rows]] = links["delay_s"].to_numpy()[rows]
    return out


def path_delay_series_s(schedule: Schedule, src: int, dst: int,
                        steps: np.ndarray) -> np.ndarray:
    """Shortest-path one-way delay [s] over usable links at each of ``steps``.

    NaN where ``dst`` cannot be reached.  Ground stations do not relay traffic
    (they are only path endpoints).  Shape ``(len(steps),)``.
    """
    import networkx as nx
    ground = set(schedule.node_ids("ground").tolist())
    out = np.full(len(steps), np.nan)
    for i, step in enumerate(steps):
        rows = schedule.links_at(int(step))
        rows = rows[rows["up"].to_numpy()]
        a = rows["a"].to_numpy().tolist()
        b = rows["b"].to_numpy().tolist()
        w = rows["delay_s"].to_numpy().tolist()
        graph = nx.Graph()
        graph.add_weighted_edges_from(
            (a[k], b[k], w[k]) for k in range(len(a))
            if (a[k] not in ground or a[k] in (src, dst)) and
               (b[k] not in ground or b[k] in (src, dst)))
        try:
            out[i] = nx.dijkstra_path_length(graph, src, dst, weight="weight")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            pass
    return out

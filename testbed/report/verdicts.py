"""Words and tables for the statistics of :mod:`.stats` (report.md and ``testbed compare``).

A difference is bolded or called better only where :mod:`.stats` found it significant;
everywhere else the text says "no significant difference".
"""

from __future__ import annotations

from testbed.report.metrics import METRICS

NO_DIFFERENCE = "no significant difference"


def fmt(key: str, value) -> str:
    return "n/a" if value is None else METRICS[key].fmt.format(value)


def interval_cell(key: str, entry: dict) -> str:
    """``mean [low, high]`` of one metric, or the mean with why there is no interval."""
    if entry["mean"] is None:
        return "n/a"
    if entry["low"] is None:
        return f"{fmt(key, entry['mean'])} (n={entry['n']})"
    return f"{fmt(key, entry['mean'])} [{fmt(key, entry['low'])}, {fmt(key, entry['high'])}]"


def winners(stats: dict) -> dict[str, str]:
    """{metric: group} where one group is significantly better than every other one."""
    groups = list(stats["per_algorithm"])
    out = {}
    for key, info in stats["metrics"].items():
        if not info["ranked"]:
            continue
        beats: dict[str, set[str]] = {g: set() for g in groups}
        for c in stats["comparisons"]:
            if c["metric"] == key and c["better"] is not None:
                loser = c["b"] if c["better"] == c["a"] else c["a"]
                beats[c["better"]].add(loser)
        with_value = [g for g in groups if stats["per_algorithm"][g][key]["mean"] is not None]
        for g in with_value:
            if len(with_value) > 1 and beats[g] >= set(with_value) - {g}:
                out[key] = g
    return out


def interval_table(stats: dict, keys: list[str], name: str = "algorithm") -> list[str]:
    """One row per group, one column per metric: mean [95 % CI]; bold where the group is
    significantly better than every other group on that metric."""
    best = winners(stats)
    header = [name] + [METRICS[k].header + ("" if METRICS[k].ranked else " (not ranked)") for k in keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * len(keys)) + "|"]
    for group, entries in stats["per_algorithm"].items():
        cells = [f"`{group}`"]
        for k in keys:
            text = interval_cell(k, entries[k])
            cells.append(f"**{text}**" if best.get(k) == group else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def difference_line(c: dict) -> str:
    """One comparison in words."""
    key, m = c["metric"], METRICS[c["metric"]]
    what = m.header.split(" [")[0]
    if c["low"] is None:
        return (f"- {what}: `{c['a']}` vs `{c['b']}`: {NO_DIFFERENCE} can be claimed "
                f"({c['why']}; mean difference {fmt(key, c['mean_diff'])} {m.unit}).")
    interval = f"{fmt(key, c['mean_diff'])} {m.unit}, 95 % CI [{fmt(key, c['low'])}, {fmt(key, c['high'])}]"
    if not c["significant"]:
        return f"- {what}: `{c['a']}` vs `{c['b']}`: {NO_DIFFERENCE} ({c['a']} - {c['b']} = {interval})."
    if c["better"] is None:
        return f"- {what}: **`{c['a']}` and `{c['b']}` differ** ({c['a']} - {c['b']} = {interval}; not ranked)."
    lower = c["a"] if c["mean_diff"] < 0 else c["b"]
    higher = c["b"] if lower == c["a"] else c["a"]
    return (f"- {what}: **better: `{c['better']}`** (`{lower}` lower than `{higher}`; "
            f"{c['a']} - {c['b']} = {interval}).")


def difference_lines(stats: dict, keys: list[str]) -> list[str]:
    """Significant differences first, then the rest (each with its interval)."""
    chosen = [c for c in stats["comparisons"] if c["metric"] in keys]
    if chosen and all(c["low"] is None for c in chosen):
        why = sorted({c["why"] for c in chosen if c["why"]})
        return [f"{NO_DIFFERENCE.capitalize()} can be claimed for any of the {len(chosen)} comparisons "
                f"({'; '.join(why)}): the table above gives means only. Run at least "
                f"{stats['min_trials']} trials (`[experiment] trials`) for intervals.", ""]
    significant = [c for c in chosen if c["significant"]]
    rest = [c for c in chosen if not c["significant"]]
    out = []
    if significant:
        out += [f"Significant differences ({len(significant)} of {len(chosen)} comparisons):", ""]
        out += [difference_line(c) for c in significant] + [""]
    else:
        out += [f"No comparison shows a significant difference ({len(chosen)} comparisons): "
                f"{NO_DIFFERENCE} on any metric.", ""]
    if rest:
        out += ["Without a significant difference:", ""] + [difference_line(c) for c in rest] + [""]
    return out


def method_line(stats: dict) -> str:
    return (f"**Method.** {stats['trials']} trial(s); intervals: {stats['method']}. A cell is bold only "
            f"where that group is significantly better than every other group on that metric. Path "
            f"changes are descriptive, not ranked.")

"""The ``[[background]]``, ``[[pcap]]`` and ``[probes]`` tables of an experiment spec.

Each names hosts by selector (``compute:<k>``, ``ground:<name>`` or a host name,
see :func:`testbed.spec.model.resolve_host`), checked against the topology's
compute satellites and ground stations; times are checked against
``time.duration_s``; background rates are scaled by ``emulation.rate_scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed.spec.checks import BAD, Problems, Table, ok, show
from testbed.spec.model import PROBE_PAIR_SETS, BackgroundSpec, PcapSpec, ProbeSpec, resolve_host
from testbed.spec.topology import Topology
from testbed.traffic.pcapreplay import capture_summary

BACKGROUND_KEYS = ("label", "src", "dst", "rate_bps", "start_s", "duration_s")
PCAP_KEYS = ("label", "file", "hosts", "start_s")
PROBE_KEYS = ("pairs", "rate_hz")

DEFAULT_PROBE_RATE_HZ = 10.0
MAX_PROBE_RATE_HZ = 1000.0


# -- [[background]] --------------------------------------------------------------

def _resolve(selector: str, hosts: dict, topology: Topology) -> str:
    """resolve_host, with a clearer message for a satellite that has no host."""
    try:
        return resolve_host(selector, hosts)
    except ValueError:
        if selector in topology.satellite_names:
            raise ValueError(f"{selector!r} is not a compute satellite, so it has no host; compute "
                             f"satellites: {', '.join(topology.compute_names) or 'none'}") from None
        raise


def _host_lists(topology: Topology | None) -> dict[str, list[str]] | None:
    """Host names by kind, for :func:`_resolve` (None without a valid topology)."""
    return ({"compute": list(topology.compute_names), "ground": list(topology.ground_names)}
            if topology else None)


def _labelled(top: Table, key: str, known: tuple[str, ...], problems: Problems, prefix: str):
    """Each table of the array ``key`` as ``(Table, label)``; labels default to
    ``<prefix><i>`` and must be unique (a repeated one is reported and BAD)."""
    labels: dict[str, str] = {}
    for i, (where, data) in enumerate(top.tables(key)):
        t = Table(data, where, problems, known)
        label = t.string("label", f"{prefix}{i}", name_rule=True)
        if ok(label) and label in labels:
            label = t.bad("label", f"duplicate label {label!r} (also {labels[label]})")
        elif ok(label):
            labels[label] = where
        yield t, label


def read_background(top: Table, problems: Problems, topology: Topology | None, rate_scale: Any) -> tuple[BackgroundSpec, ...]:
    out = []
    hosts = _host_lists(topology)
    run_s = topology.config.duration_s if topology else None
    for t, label in _labelled(top, "background", BACKGROUND_KEYS, problems, "bg"):
        ends, names = {}, {}
        for key in ("src", "dst"):
            ends[key] = t.string(key, required=True)
            if ok(ends[key]) and hosts is not None:
                try:
                    names[key] = _resolve(ends[key], hosts, topology)
                except ValueError as err:
                    ends[key] = t.bad(key, str(err))
        if ok(ends["src"]) and ok(ends["dst"]) and len(names) == 2 and names["src"] == names["dst"]:
            ends["dst"] = t.bad("dst", f"{ends['dst']!r} is the same host as src ({names['src']})")
        rate_bps = t.number("rate_bps", required=True, gt=0.0)
        start_s = t.number("start_s", 0.0, ge=0.0)
        duration_s = t.number("duration_s", None, gt=0.0)
        if run_s is not None and ok(start_s):
            if start_s >= run_s:
                start_s = t.bad("start_s", f"must be < time.duration_s ({run_s:g} s), got {show(start_s)}")
            elif duration_s is None:
                duration_s = run_s - start_s
            elif ok(duration_s) and start_s + duration_s > run_s * (1 + 1e-9):
                duration_s = t.bad("duration_s", f"the flow would end at {start_s + duration_s:g} s, after the "
                                                 f"run (time.duration_s = {run_s:g} s)")
        values = (label, ends["src"], ends["dst"], rate_bps, start_s, duration_s, rate_scale)
        if topology is not None and all(ok(v) for v in values):
            out.append(BackgroundSpec(label=label, src=names["src"], dst=names["dst"],
                                      rate_bps=rate_bps * rate_scale, start_s=start_s, duration_s=duration_s,
                                      nominal_rate_bps=rate_bps, src_selector=ends["src"],
                                      dst_selector=ends["dst"]))
    return tuple(out)


# -- [[pcap]] --------------------------------------------------------------------

def read_pcaps(top: Table, problems: Problems, spec_dir: Path, topology: Topology | None) -> tuple[PcapSpec, ...]:
    out = []
    hosts = _host_lists(topology)
    run_s = topology.config.duration_s if topology else None
    for t, label in _labelled(top, "pcap", PCAP_KEYS, problems, "pcap"):
        file, summary = t.string("file", required=True), None
        if ok(file):
            file = (spec_dir / Path(file).expanduser()).resolve()
            if not file.is_file():
                file = t.bad("file", f"no such file: {file} (relative paths start at the spec's folder)")
            else:
                try:
                    summary = capture_summary(file)
                except ValueError as err:
                    file = t.bad("file", str(err))
        selectors = t.array("hosts", ["compute:0", "compute:1"])
        names: Any = BAD
        if ok(selectors):
            if not all(isinstance(h, str) for h in selectors):
                selectors = t.bad("hosts", "must be an array of host selectors (strings)")
            elif len(selectors) < 2:
                selectors = t.bad("hosts", f"must name at least two hosts, got {len(selectors)}")
            elif hosts is not None:
                try:
                    names = tuple(_resolve(h, hosts, topology) for h in selectors)
                except ValueError as err:
                    selectors = t.bad("hosts", str(err))
                else:
                    if len(set(names)) < 2:
                        selectors = t.bad("hosts", f"{show(selectors)} name fewer than two distinct hosts")
        start_s = t.number("start_s", 0.0, ge=0.0)
        if summary is not None and ok(start_s) and run_s is not None and start_s + summary[1] > run_s * (1 + 1e-9):
            start_s = t.bad("start_s", f"the capture spans {summary[1]:g} s and would end at "
                                       f"{start_s + summary[1]:g} s, after the run (time.duration_s = {run_s:g} s)")
        if summary is not None and all(ok(v) for v in (label, file, selectors, names, start_s)):
            out.append(PcapSpec(label=label, file=file, hosts=names, host_selectors=tuple(selectors),
                                start_s=start_s, n_packets=summary[0], span_s=summary[1], size_bytes=summary[2]))
    return tuple(out)


# -- [probes] --------------------------------------------------------------------

def read_probes(t: Table, topology: Topology | None) -> ProbeSpec | Any:
    rate_hz = t.number("rate_hz", DEFAULT_PROBE_RATE_HZ, gt=0.0, le=MAX_PROBE_RATE_HZ)
    value = t.data.get("pairs", "all-compute")
    pairs: Any = BAD
    if isinstance(value, str):
        if value in PROBE_PAIR_SETS:
            pairs = value
        else:
            t.bad("pairs", f"unknown value {value!r}; use {' or '.join(map(repr, PROBE_PAIR_SETS))} "
                           "or an array of [a, b] host selector pairs")
    elif isinstance(value, list):
        hosts = _host_lists(topology)
        seen: dict[frozenset, int] = {}
        good = []
        for i, pair in enumerate(value):
            where = f"pairs[{i}]"
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                t.bad(where, f"must be an array of two host selectors, e.g. [\"compute:0\", \"ground:name\"], "
                             f"got {show(pair)}")
                continue
            if hosts is None:
                good.append(tuple(pair))
                continue
            try:
                a, b = (_resolve(x, hosts, topology) for x in pair)
            except ValueError as err:
                t.bad(where, str(err))
                continue
            if a == b:
                t.bad(where, f"both ends are the same host ({a})")
            elif frozenset((a, b)) in seen:
                t.bad(where, f"same pair as pairs[{seen[frozenset((a, b))]}]")
            else:
                seen[frozenset((a, b))] = i
                good.append(tuple(pair))
        if len(good) == len(value):
            pairs = tuple(good)
    else:
        t.bad("pairs", f"must be 'all-compute', 'all' or an array of [a, b] pairs, got {show(value)}")
    if not (ok(rate_hz) and ok(pairs)):
        return BAD
    return ProbeSpec(pairs=pairs, rate_hz=rate_hz)


__all__ = ["read_background", "read_pcaps", "read_probes", "BACKGROUND_KEYS", "PCAP_KEYS", "PROBE_KEYS",
           "DEFAULT_PROBE_RATE_HZ", "MAX_PROBE_RATE_HZ"]

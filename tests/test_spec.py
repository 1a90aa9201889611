"""Experiment specs: the shipped experiments, the Spec API, unknown keys at every level,
relative paths, and ``testbed check`` end to end. Pure: no root, no network."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import topologies
from controllers import ALGORITHMS
from testbed.spec import ProbeSpec, Spec, SpecError, load_spec, resolve_host
from testbed.workload import Workload

from conftest import write_capture

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
SHIPPED = ["default", "handover", "starlink_v3_compute"]
BAD = Path(__file__).resolve().parent / "specs" / "bad"
SHARED_DATA = REPO.parent / "shared" / "data"


# -- a tiny TOML writer, so tests can build specs from dicts --------------------

def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def dumps(spec: dict) -> str:
    lines = [f"{k} = {_value(v)}" for k, v in spec.items() if not isinstance(v, (dict, list))]
    for key, value in spec.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"] + [f"{k} = {_value(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines += ["", f"[[{key}]]"] + [f"{k} = {_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, spec: dict, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(spec), encoding="utf-8")
    return path


#: A spec using every table.
FULL = {
    "experiment": {"name": "full", "description": "every table", "seed": 5, "output_dir": "out"},
    "constellation": {"shells": [{"planes": 4, "sats_per_plane": 4, "altitude_km": 5000.0,
                                  "inclination_deg": 53.0, "name": "s"}]},
    "isl": {"policy": "plus_grid", "params": {"max_lat_deg": 80.0}, "acquisition_s": 1.0},
    "ground": {"stations": [{"name": "paris", "lat_deg": 48.86, "lon_deg": 2.35}], "policy": "nearest"},
    "compute": {"cluster": {"plane": 0, "slot": 0, "size": 4}},
    "time": {"epoch": "2025-03-01T12:00:00Z", "duration_s": 10.0, "step_s": 1.0, "speedup": 2.0},
    "emulation": {"rate_scale": 1e-3, "backend": "delayline"},
    "algorithms": [{"name": "ecmp_k", "params": {"k": 2}, "label": "ecmp2"}, {"name": "min_delay"}],
    "workloads": [{"generator": "tp_decode", "n_ranks": 2, "params": {"iterations": 2}, "placement": "spread"}],
    "background": [{"src": "compute:0", "dst": "ground:paris", "rate_bps": 1e9, "start_s": 2.0}],
    "probes": {"pairs": "all", "rate_hz": 5.0},
}


# -- shipped experiments -------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> dict[str, Spec]:
    return {name: load_spec(EXPERIMENTS / f"{name}.toml") for name in SHIPPED}


def test_shipped_experiments_load(shipped):
    for name, spec in shipped.items():
        assert spec.name == name
        assert spec.path == (EXPERIMENTS / f"{name}.toml").absolute()
        assert isinstance(spec.schedule_config(), topologies.ScheduleConfig)
        json.dumps(spec.raw)                       # manifest-ready
        assert spec.rate_scale == 1e-4 and spec.backend == "auto" and spec.speedup == 1
        for w in spec.workloads:
            assert len(w.placement.node_ids) == w.n_ranks
            assert set(w.placement.node_ids) <= set(spec.compute_node_ids)


def test_default_experiment_fits_the_demo_budget(shipped):
    spec = shipped["default"]
    cfg = spec.schedule_config()
    assert cfg.preset in ("test4x4", "test6x6")
    assert 4 <= len(spec.compute_node_ids) <= 6
    assert 1 <= len(spec.ground_names) <= 2
    names = [a.name for a in spec.algorithms]
    assert 2 <= len(names) <= 3 and {"min_hop", "min_delay"} <= set(names)
    assert set(names) & {"predictive", "ecmp_k"}
    assert 30 <= cfg.duration_s <= 40 and 0.5 <= cfg.step_s <= 1
    assert spec.wall_s_per_algorithm * len(spec.algorithms) <= 120      # + set-up within 3 min
    assert spec.probes == ProbeSpec("all-compute", 10.0)
    (ddp,) = spec.workloads
    workload = ddp.build()
    assert isinstance(workload, Workload) and workload.meta["source"] == "generator:ddp"
    assert workload.n_ranks == ddp.n_ranks
    assert ddp.place(spec.host_names_by_kind()) == list(spec.compute_names[:ddp.n_ranks])


def test_starlink_v3_and_handover_experiments(shipped):
    star = shipped["starlink_v3_compute"]
    assert star.schedule_config().preset == "starlink_v3" and star.n_satellites == 3360
    assert sorted(a.name for a in star.algorithms) == sorted(ALGORITHMS)
    assert {w.generator for w in star.workloads} == {"ddp", "moe"}
    assert type(star.schedule_config().compute).__name__ == "ComputeCluster"
    hand = shipped["handover"]
    cfg = hand.schedule_config()
    assert [a.name for a in hand.algorithms] == ["min_delay", "predictive"]
    assert cfg.isl_policy == "plus_grid" and cfg.isl_params["max_lat_deg"] == 60
    assert cfg.gsl_policy == "nearest" and len(hand.ground_names) >= 2


# -- the Spec API -----------------------------------------------------------------

def test_full_spec_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(write(tmp_path, FULL))
    assert dataclasses.is_dataclass(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3
    assert (spec.name, spec.description, spec.seed) == ("full", "every table", 5)
    assert spec.output_dir == tmp_path / "out"
    assert spec.raw == FULL
    cfg = spec.schedule_config()
    assert cfg.isl_params == {"max_lat_deg": 80.0} and cfg.acquisition_s == 1.0
    assert cfg.n_steps == spec.n_steps == 10 and spec.speedup == 2.0
    assert spec.wall_s_per_algorithm == 5.0
    assert [(a.label, a.name) for a in spec.algorithms] == [("ecmp2", "ecmp_k"), ("min_delay", "min_delay")]
    assert spec.algorithms[0].params == {"k": 2, "max_stretch": 0.5}      # defaults filled in
    assert spec.compute_node_ids == (0, 1, 3, 4)
    assert spec.compute_names == ("s-p0-s0", "s-p0-s1", "s-p0-s3", "s-p1-s0")
    (w,) = spec.workloads
    assert w.placement.rule == "spread" and w.placement.node_ids == (0, 3)
    assert w.place(spec.host_names_by_kind()) == ["s-p0-s0", "s-p0-s3"]
    (bg,) = spec.background
    assert (bg.src, bg.dst, bg.src_selector) == ("s-p0-s0", "paris", "compute:0")
    assert bg.nominal_rate_bps == 1e9 and bg.rate_bps == pytest.approx(1e6)   # x rate_scale
    assert (bg.start_s, bg.duration_s, bg.end_s) == (2.0, 8.0, 10.0)
    pairs = spec.probes.resolve_pairs(spec.host_names_by_kind())
    assert len(pairs) == 10 and ("s-p1-s0", "paris") in pairs


def test_the_schedule_has_the_hosts_the_spec_resolved(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    schedule = topologies.generate(spec.schedule_config())
    nodes = schedule.nodes
    assert tuple(nodes[nodes.kind == "compute"].name) == spec.compute_names
    assert tuple(nodes[nodes.kind == "ground"].name) == spec.ground_names


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, {"constellation": {"preset": "test4x4"}, "compute": {"per_plane": 1},
                            "algorithms": [{"name": "min_hop"}], "workloads": [{"generator": "ddp"}]},
                 name="my-exp.toml")
    spec = load_spec(path)
    assert spec.name == "my-exp" and spec.seed == 0 and spec.description == ""
    assert spec.output_dir == tmp_path / "results"
    assert (spec.rate_scale, spec.backend, spec.speedup) == (1e-4, "auto", 1.0)
    assert spec.probes == ProbeSpec("all-compute", 10.0) and spec.background == ()
    assert spec.workloads[0].n_ranks == 4 and spec.workloads[0].label == "ddp"   # every compute satellite
    assert spec.workloads[0].placement.rule == "first"


def test_resolve_host_and_probe_pairs():
    hosts = {"compute": ["c0", "c1", "c2"], "ground": ["paris"]}
    assert resolve_host("compute:2", hosts) == "c2"
    assert resolve_host("ground:paris", hosts) == "paris"
    assert resolve_host("c1", hosts) == "c1"
    for bad in ("compute:3", "compute:x", "ground:rome", "c9"):
        with pytest.raises(ValueError):
            resolve_host(bad, hosts)
    assert ProbeSpec("all-compute").resolve_pairs(hosts) == [("c0", "c1"), ("c0", "c2"), ("c1", "c2")]
    assert len(ProbeSpec("all").resolve_pairs(hosts)) == 6
    assert ProbeSpec((("ground:paris", "compute:1"),)).resolve_pairs(hosts) == [("paris", "c1")]


def test_explicit_placement(tmp_path):
    spec = dict(copy.deepcopy(FULL), workloads=[{"generator": "tp_decode", "placement": [4, 0]}])
    (w,) = load_spec(write(tmp_path, spec)).workloads
    assert w.n_ranks == 2 and w.placement.node_ids == (4, 0) and w.placement.compute_indices == (3, 0)


# -- unknown keys, several problems ----------------------------------------------------

LEVELS = [
    ((), "bogus_key"),
    (("experiment",), "experiment.bogus_key"),
    (("constellation",), "constellation.bogus_key"),
    (("constellation", "shells", 0), "constellation.shells[0].bogus_key"),
    (("isl",), "isl.bogus_key"),
    (("isl", "params"), "isl.params.bogus_key"),
    (("ground",), "ground.bogus_key"),
    (("ground", "stations", 0), "ground.stations[0].bogus_key"),
    (("compute", "cluster"), "compute.cluster.bogus_key"),
    (("time",), "time.bogus_key"),
    (("emulation",), "emulation.bogus_key"),
    (("algorithms", 0), "algorithms[0].bogus_key"),
    (("algorithms", 0, "params"), "algorithms[0].params.bogus_key"),
    (("workloads", 0), "workloads[0].bogus_key"),
    (("workloads", 0, "params"), "workloads[0].params.bogus_key"),
    (("background", 0), "background[0].bogus_key"),
    (("probes",), "probes.bogus_key"),
]


def test_full_spec_is_valid(tmp_path):
    load_spec(write(tmp_path, FULL))


@pytest.mark.parametrize("where, path", LEVELS, ids=[p for _, p in LEVELS])
def test_unknown_keys_are_caught_at_every_level(tmp_path, where, path):
    spec = copy.deepcopy(FULL)
    table = spec
    for step in where:
        table = table[step]
    table["bogus_key"] = 1
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    (problem,) = caught.value.problems
    assert path in problem and "unknown" in problem


def test_unknown_compute_selection(tmp_path):
    spec = dict(copy.deepcopy(FULL), compute={"bogus_key": 3}, workloads=[], background=[])
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.problems == ("compute.bogus_key: unknown selection (known: ids, every_k, per_plane, cluster)",)


def test_problems_across_all_tables_are_reported_together(tmp_path):
    spec = copy.deepcopy(FULL)
    spec["experiment"]["seed"] = 1.5
    spec["constellation"]["shells"][0]["inclination_deg"] = 200.0
    spec["isl"]["lasers_per_sat"] = -1
    spec["time"]["speedup"] = -2.0
    spec["emulation"]["rate_scale"] = 0.0
    spec["algorithms"][0]["params"]["k"] = 0
    spec["workloads"][0]["params"]["iterations"] = 0
    spec["background"][0]["rate_bps"] = "fast"
    spec["probes"]["rate_hz"] = 5000.0
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.problems == (
        "experiment.seed: must be an integer, got 1.5",
        "constellation.shells[0].inclination_deg: must be <= 180, got 200",
        "isl.lasers_per_sat: must be >= 0, got -1",
        "time.speedup: must be > 0, got -2",
        "emulation.rate_scale: must be > 0, got 0",
        "algorithms[0].params.k: must be >= 1, got 0",
        "workloads[0].params.iterations: must be an integer >= 1, got 0",
        "background[0].rate_bps: must be a number, got 'fast' (string)",
        "probes.rate_hz: must be <= 1000, got 5000",
    )


# -- relative paths ----------------------------------------------------------------

def test_relative_tle_and_trace_paths_start_at_the_spec_folder(tmp_path, monkeypatch):
    tle = SHARED_DATA / "iridium-2022-09-14.tle"
    if not tle.exists():
        pytest.skip(f"{tle} not available")
    folder = tmp_path / "exp"
    (folder / "data").mkdir(parents=True)
    shutil.copy(tle, folder / "data" / "iridium.tle")
    shutil.copy(BAD / "two_ranks.jsonl", folder / "data" / "job.jsonl")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(folder, {"constellation": {"tle_path": "data/iridium.tle", "tle_include_unplaced": True},
                          "compute": {"every_k": 5},
                          "time": {"duration_s": 10.0, "step_s": 1.0},
                          "algorithms": [{"name": "min_delay"}],
                          "workloads": [{"trace": "data/job.jsonl"}]})
    spec = load_spec(Path("..") / "exp" / path.name)
    assert spec.schedule_config().tle_path == str(folder / "data" / "iridium.tle")
    assert spec.n_satellites == topologies.load_tle(tle, include_unplaced=True).fleet.n_sats
    (w,) = spec.workloads
    assert w.trace == folder / "data" / "job.jsonl" and w.n_ranks == 2 and w.label == "job"
    assert w.build().n_ranks == 2


def test_chakra_trace_folder(tmp_path):
    trace = SHARED_DATA / "chakra" / "all_reduce_8npus_1MB"
    if not trace.exists():
        pytest.skip(f"{trace} not available")
    spec = dict(copy.deepcopy(FULL), workloads=[{"trace": str(trace)}], background=[])
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.problems == ("workloads[0].trace: 8 ranks need 8 compute satellites, "
                                     "but [compute] selects only 4",)
    spec["compute"] = {"cluster": {"plane": 0, "slot": 0, "size": 8}}
    (w,) = load_spec(write(tmp_path, spec)).workloads
    assert w.n_ranks == 8 and w.build().meta["source"] == "chakra"


# -- testbed check -----------------------------------------------------------------

def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed", "check", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_check_accepts_the_shipped_experiments():
    result = run_check(*(f"experiments/{name}.toml" for name in SHIPPED))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for name in SHIPPED:
        assert f"experiments/{name}.toml: ok" in result.stdout
    assert "wall time" in result.stdout and "compute sats" in result.stdout


def test_check_reports_one_line_per_problem_and_exits_2():
    bad = BAD / "bad_algorithms.toml"
    result = run_check(str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    with pytest.raises(SpecError) as caught:
        load_spec(bad)
    assert result.stderr.splitlines() == [f"{bad}: {p}" for p in caught.value.problems]


def spec_with_capture(tmp_path: Path, **pcap) -> Path:
    write_capture(tmp_path / "cap.pcap")
    text = (REPO / "tests" / "specs" / "tiny.toml").read_text()
    text += "\n[[pcap]]\nfile = \"cap.pcap\"\n" + "".join(f"{k} = {_value(v)}\n" for k, v in pcap.items())
    (tmp_path / "s.toml").write_text(text)
    return tmp_path / "s.toml"


def test_a_capture_in_a_spec_is_summarised_and_its_hosts_resolved(tmp_path):
    spec = load_spec(spec_with_capture(tmp_path, hosts=["compute:1", "compute:3"], start_s=1.5))
    (c,) = spec.pcaps
    assert c.label == "pcap0" and c.file == tmp_path / "cap.pcap" and c.start_s == 1.5
    assert c.hosts == (spec.compute_names[1], spec.compute_names[3])
    assert c.n_packets == 100 and c.span_s == pytest.approx(0.99) and c.size_bytes == 100 * 242
    out = subprocess.run([sys.executable, "-m", "testbed", "check", str(tmp_path / "s.toml")],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "pcap           pcap0: cap.pcap, 100 IPv4 packets over 0.99 s" in out.stdout


def test_a_capture_that_would_outlast_the_run_is_rejected(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(spec_with_capture(tmp_path, start_s=3.5))
    assert caught.value.problems == ("pcap[0].start_s: the capture spans 0.99 s and would end at 4.49 s, "
                                     "after the run (time.duration_s = 4 s)",)

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
from controllers.algorithms import RoutingContext
from testbed.spec import ProbeSpec, Spec, SpecError, load_spec, resolve_host
from testbed.workload import Workload

from conftest import DATA, write_capture

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
SHIPPED = ["default", "handover", "starlink_v3_compute"]
BAD = Path(__file__).resolve().parent / "specs" / "bad"


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
        assert spec.rate_scale == 1e-4 and spec.backend == "auto" and spec.speedup in (1, 4)
        for w in spec.workloads:
            assert len(w.placement.node_ids) == w.n_ranks
            assert set(w.placement.node_ids) <= set(spec.compute_node_ids)


def test_default_experiment_fits_the_demo_budget(shipped):
    spec = shipped["default"]
    assert 4 <= len(spec.compute_node_ids) <= 6 and 1 <= len(spec.ground_names) <= 2
    names = [a.name for a in spec.algorithms]
    assert 2 <= len(names) <= 3 and {"min_hop", "min_delay"} <= set(names)
    assert spec.trials >= 3                                            # intervals need trials
    assert spec.wall_s_per_algorithm * len(names) * spec.trials <= 120   # + set-up within 3 min
    (ddp,) = spec.workloads
    workload = ddp.build()
    assert isinstance(workload, Workload) and workload.meta["source"] == "generator:ddp"
    assert ddp.place(spec.host_names_by_kind()) == list(spec.compute_names[:ddp.n_ranks])


def test_default_experiment_has_link_changes_that_routing_must_handle(shipped):
    """What the demo exists to show: lasers between compute satellites go down inside the
    window (while the job runs), a ground station hands over, and min_hop and min_delay
    disagree on some compute pair's path from the start."""
    spec = shipped["default"]
    schedule = topologies.generate(spec.schedule_config())
    links = schedule.links
    compute = set(spec.compute_node_ids)
    first = set(map(tuple, links[links["step"] == 0][["a", "b"]].to_numpy()))
    last = set(map(tuple, links[links["step"] == schedule.n_steps - 1][["a", "b"]].to_numpy()))
    dropped = first - last
    assert any(a in compute and b in compute for a, b in dropped), dropped     # a laser between compute sats
    ground = set(schedule.node_ids("ground"))
    assert any(a in ground or b in ground for a, b in dropped ^ (last - first))  # a ground handover
    graph = schedule.graph_at(0)
    hosts = sorted(compute | ground)
    ctx = RoutingContext(t_s=0.0)
    routes = {name: ALGORITHMS[name].bind()(graph, hosts, ctx) for name in ("min_hop", "min_delay")}
    assert routes["min_hop"] != routes["min_delay"]


def test_starlink_v3_and_handover_experiments(shipped):
    star = shipped["starlink_v3_compute"]
    assert star.schedule_config().preset == "starlink_v3" and star.n_satellites == 3360
    assert sorted(a.name for a in star.algorithms) == sorted(ALGORITHMS)
    assert {w.generator for w in star.workloads} == {"ddp", "moe"}
    assert type(star.schedule_config().compute).__name__ == "ComputeCluster"
    hand = shipped["handover"]
    cfg = hand.schedule_config()
    assert [a.name for a in hand.algorithms] == ["min_delay", "predictive", "predictive"]
    assert [a.updates for a in hand.algorithms] == ["direct", "direct", "consistent"] and hand.trials == 3
    assert cfg.isl_policy == "plus_grid" and cfg.isl_params["max_lat_deg"] == 60
    assert cfg.gsl_policy == "make_before_break" and len(hand.ground_names) >= 2


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


def test_several_problems_of_one_delegated_call_are_all_reported_at_their_key_paths(tmp_path):
    """ScheduleConfig, a generator and an algorithm are each called once with the whole table;
    every (field, problem) they return lands at the spec's key path, in file order."""
    spec = copy.deepcopy(FULL)
    spec["constellation"]["shells"][0].update(planes=0, altitude_km=-5.0)
    spec["isl"]["params"] = {"max_lat_deg": 120, "cutoff_deg": 60}
    spec["ground"]["stations"].append({"name": "rome", "lat_deg": 95, "lon_deg": 500})
    spec["time"].update(duration_s=10.0, step_s=20.0, epoch="soon")
    spec["workloads"][0]["n_ranks"] = 1
    spec["workloads"][0]["params"] = {"iterations": 0, "token_s": -1.0, "layer": 2}
    spec["algorithms"][0]["params"] = {"k": 0, "max_stretch": -1, "kk": 1}
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.problems == (
        "constellation.shells[0].planes: must be >= 1, got 0",
        "constellation.shells[0].altitude_km: must be > 0, got -5",
        "isl.params.max_lat_deg: must be <= 90, got 120",
        "isl.params.cutoff_deg: unknown parameter for this policy (known: max_lat_deg, pairing, shift)",
        "ground.stations[1].lat_deg: must be <= 90, got 95",
        "ground.stations[1].lon_deg: must be <= 360, got 500",
        "time.epoch: not an ISO 8601 date-time: 'soon' (e.g. 2025-01-01T00:00:00Z)",
        "time.step_s: must be <= duration_s (10), got 20",
        "algorithms[0].params.kk: unknown parameter; allowed: k, max_stretch",
        "algorithms[0].params.k: must be >= 1, got 0",
        "algorithms[0].params.max_stretch: must be >= 0, got -1.0",
        "workloads[0].params.layer: unknown parameter of generator 'tp_decode'; known: iterations, layers, "
        "hidden, batch, bytes_per_element, token_s, algorithm",
        "workloads[0].n_ranks: must be an integer >= 2, got 1",
        "workloads[0].params.iterations: must be an integer >= 1, got 0",
        "workloads[0].params.token_s: must be a finite number > 0, got -1.0",
    )


# -- relative paths ----------------------------------------------------------------

def test_relative_tle_and_trace_paths_start_at_the_spec_folder(tmp_path, monkeypatch):
    tle = DATA / "iridium-2022-09-14.tle"
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
    trace = DATA / "chakra" / "all_reduce_8npus_1MB"
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


def test_hypatia_conventions_reach_the_schedule_config(tmp_path):
    """pairing/shift, a ground range cap without a mask, station elevation and UTC
    Earth rotation pass from the spec's tables into ScheduleConfig; a shift without
    pairing = "index" is reported at its key path."""
    spec = copy.deepcopy(FULL)
    spec["constellation"] = {"shells": [{"planes": 4, "sats_per_plane": 4, "altitude_km": 5000.0,
                                         "inclination_deg": 53.0, "name": "s", "phasing": 0,
                                         "odd_plane_offset_slots": 0.5}]}
    spec["isl"] = {"policy": "plus_grid", "params": {"pairing": "index", "shift": 1}}
    spec["ground"] = {"stations": [{"name": "paris", "lat_deg": 48.86, "lon_deg": 2.35,
                                    "elevation_m": 35.0}],
                      "min_elevation_deg": 0.0, "max_range_km": 9000.0}
    spec["time"]["earth_rotation"] = "utc"
    config = load_spec(write(tmp_path, spec)).schedule_config()
    assert dict(config.isl_params) == {"pairing": "index", "shift": 1}
    assert config.gsl_max_range_km == 9000.0 and config.gsl_min_elevation_deg == 0.0
    assert config.ground_stations == (("paris", 48.86, 2.35, 35.0),)
    assert config.earth_rotation == "utc" and config.shells[0].odd_plane_offset_slots == 0.5
    spec["isl"]["params"] = {"shift": 1}
    spec["time"]["earth_rotation"] = "tt"
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec, "bad.toml"))
    problems = caught.value.problems
    assert any(p.startswith("isl.params.shift: only applies with pairing") for p in problems)
    assert any(p.startswith("time.earth_rotation: unknown value 'tt'") for p in problems)


def test_a_hypatia_folder_is_a_constellation_source(tmp_path):
    """[constellation] hypatia_dir: the folder's TLEs, ISLs, stations and ground-link rule,
    with the spec's own keys winning; a bad station name is reported at the key."""
    from topologies.cli import main as topo_main
    folder = tmp_path / "hyp"
    folder.mkdir()
    assert topo_main(["--preset", "test4x4", "--duration-s", "1", "--step-s", "1",
                      "--min-elevation-deg", "0", "--gsl-max-range-km", "20000",
                      "--ground", "paris:48.86:2.35", "--export", "hypatia", str(folder)]) == 0
    spec = copy.deepcopy(FULL)
    spec["constellation"] = {"hypatia_dir": "hyp"}
    del spec["isl"]                                   # the folder's isls.txt, not a +Grid
    spec["ground"] = {"policy": "nearest"}
    spec["background"] = [{"src": "compute:0", "dst": "ground:paris", "rate_bps": 1e9, "start_s": 2.0}]
    config = load_spec(write(tmp_path, spec)).schedule_config()
    assert config.tle_path == str(folder / "tles.txt")
    assert config.isl_policy == "listed" and len(config.isl_params["pairs"]) == 32
    assert config.ground_stations == (("paris", 48.86, 2.35, 0.0),)
    assert config.gsl_max_range_km == 20000.0 and config.gsl_min_elevation_deg == 0.0
    assert config.earth_rotation == "utc"
    spec["ground"]["min_elevation_deg"] = 10.0          # the spec's key wins
    assert load_spec(write(tmp_path, spec)).schedule_config().gsl_min_elevation_deg == 10.0
    (folder / "ground_stations.txt").write_text("0,São Paulo,-23.55,-46.63,760\n")
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert any(p.startswith("constellation.hypatia_dir:") and "'São-Paulo' is not a valid host name" in p
               for p in caught.value.problems)


def _spec_with_algorithm(tmp_path, entry: str) -> Path:
    spec = (EXPERIMENTS.parent / "examples" / "widest.toml").read_text()
    spec = spec.replace('[[algorithms]]\npath = "algos/widest.py"      # relative to this spec', "[[algorithms]]\n" + entry)
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    return path


def test_a_users_algorithm_file_is_loaded_by_path_relative_to_the_spec(tmp_path):
    spec = load_spec(EXPERIMENTS.parent / "examples" / "widest.toml")
    widest = spec.algorithms[0]
    assert widest.name == widest.label == "widest" and widest.path.name == "widest.py"
    assert widest.ref == str(widest.path) and widest.params == {"reference_bps": 200e9}
    from controllers import make_router
    from controllers.algorithms import RoutingContext
    graph = topologies.generate(spec.schedule_config()).graph_at(0)
    routes = make_router(widest.ref)(graph, sorted(spec.compute_node_ids), RoutingContext(t_s=0.0))
    assert routes     # the controller process resolves the same reference the same way


@pytest.mark.parametrize("entry, problem", [
    ('path = "nowhere.py"', "algorithms[0].path: no such algorithm file"),
    ('path = "algo.py"\nname = "min_hop"', "algorithms[0].path: give either name"),
    ('path = "empty.py"', "algorithms[0].path: defines no ALGORITHM"),
    ('path = "broken.py"', "algorithms[0].path: importing it failed: ZeroDivisionError"),
    ('path = "spec.toml"', "algorithms[0].path: must be a .py file"),
])
def test_a_bad_algorithm_file_is_one_line_naming_the_key(tmp_path, entry, problem):
    (tmp_path / "empty.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    with pytest.raises(SpecError) as err:
        load_spec(_spec_with_algorithm(tmp_path, entry))
    assert any(problem in line for line in err.value.problems), err.value.problems


def test_compute_power_is_read_with_defaults_and_every_bad_key_named(tmp_path):
    text = (EXPERIMENTS / "default.toml").read_text().replace(
        "[compute]\nids = [1, 4, 7, 10]", "[compute]\nids = [1, 4, 7, 10]\npower = { solar_w = 1500, policy = \"pause\" }")
    path = tmp_path / "power.toml"
    path.write_text(text)
    spec = load_spec(path)
    assert spec.power.solar_w == 1500 and spec.power.policy == "pause" and spec.power.accelerator_w == 700
    assert spec.raw["compute"]["power"]["solar_w"] == 1500          # the manifest keeps it
    path.write_text(text.replace('{ solar_w = 1500, policy = "pause" }',
                                 '{ solar_w = -3, policy = "nap", initial_soc = 1.5, lasers = 4 }'))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = "\n".join(err.value.problems)
    for key in ("compute.power.solar_w", "compute.power.policy", "compute.power.initial_soc", "compute.power.lasers"):
        assert key in text


def test_sunlit_placement_puts_ranks_on_the_satellites_longest_in_sunlight(tmp_path):
    text = (EXPERIMENTS / "default.toml").read_text().replace("n_ranks = 4\n", "n_ranks = 2\nplacement = \"sunlit\"\n")
    path = tmp_path / "sunlit.toml"
    path.write_text(text)
    spec = load_spec(path)
    (w,) = spec.workloads
    assert w.placement.rule == "sunlit" and w.placement.node_ids == ()
    hosts = spec.host_names_by_kind()
    share = [0.2, 0.9, 0.9, 0.5]                # per compute host, node-id order
    assert w.place(hosts, share) == [hosts["compute"][1], hosts["compute"][2]]   # ties by node id
    with pytest.raises(Exception, match="needs the schedule"):
        w.place(hosts)


def test_faults_are_read_and_bad_ones_named_by_key(tmp_path):
    base = (EXPERIMENTS / "default.toml").read_text()
    path = tmp_path / "faults.toml"
    path.write_text(base + '\n[[faults]]\nkind = "satellite"\nnode = 13\nt_s = 20\n'
                    '\n[[faults]]\nkind = "compute_reset"\nrate_per_hour = 2\nsaa_rate_per_hour = 30\n')
    kinds = [f.kind for f in load_spec(path).faults]
    assert kinds == ["laser", "satellite", "compute_reset"]       # the default's own laser loss first
    path.write_text(base + '\n[[faults]]\nkind = "meteor"\n\n[[faults]]\nkind = "satellite"\nnode = 999\nt_s = 5\n'
                    '\n[[faults]]\nkind = "controller_outage"\nt_s = 10\n')
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = "\n".join(err.value.problems)
    assert "faults[1].kind" in text and "faults[2].node" in text and "faults[3].duration_s" in text


def test_update_mode_per_algorithm_defaults_to_direct(tmp_path):
    path = write(tmp_path, {"constellation": {"preset": "test4x4"},
                            "algorithms": [{"name": "predictive", "updates": "consistent"},
                                           {"name": "min_delay"}]})
    spec = load_spec(path)
    assert [(a.name, a.updates) for a in spec.algorithms] == [("predictive", "consistent"), ("min_delay", "direct")]

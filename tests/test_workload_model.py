"""Workload model validation and the JSON Lines file format."""

import json

import pytest

from testbed.workload import (Collective, Compute, Recv, Send, Workload, WorkloadError, read_jsonl,
                              write_jsonl)


def ring(n, size=1000, **kw):
    return Collective(kind="all_reduce", size_bytes=size, group=tuple(range(n)), **kw)


def small_workload():
    ops = [
        [Compute(duration_s=0.5, name="fwd"), ring(2, deps=(0,)), Send(peer=1, size_bytes=10, deps=(1,))],
        [Compute(duration_s=0.5), ring(2, deps=(0,)), Recv(peer=0, size_bytes=10)],
    ]
    return Workload(2, ops, iterations=1, meta={"source": "test", "parameters": {}})


def test_defaults_are_filled_in():
    c = ring(4)
    assert c.algorithm == "ring" and c.root == 0
    a2a = Collective(kind="all_to_all", size_bytes=8, group=(2, 0))
    assert a2a.algorithm == "direct" and a2a.root == 2


@pytest.mark.parametrize("make, words", [
    (lambda: Collective(kind="all_reduce", size_bytes=0, group=(0, 1)), "size_bytes"),
    (lambda: Collective(kind="allreduce", size_bytes=1, group=(0, 1)), "unknown collective kind"),
    (lambda: Collective(kind="all_to_all", size_bytes=1, group=(0, 1), algorithm="ring"), "not available"),
    (lambda: Collective(kind="all_reduce", size_bytes=1, group=(0, 0)), "distinct"),
    (lambda: Collective(kind="broadcast", size_bytes=1, group=(0, 1), root=3), "root"),
    (lambda: Compute(duration_s=float("nan")), "duration_s"),
    (lambda: Compute(duration_s=-1), "duration_s"),
    (lambda: Send(peer=1, size_bytes=True), "size_bytes"),
])
def test_bad_ops_are_rejected(make, words):
    with pytest.raises(WorkloadError, match=words):
        make()


def test_cross_rank_checks():
    with pytest.raises(WorkloadError, match="differs"):
        Workload(2, [[ring(2, 100)], [ring(2, 200)]])
    with pytest.raises(WorkloadError, match="issues 2 collectives but rank 1 issues 1"):
        Workload(2, [[ring(2), ring(2)], [ring(2)]])
    with pytest.raises(WorkloadError, match="do not match"):
        Workload(2, [[Send(peer=1, size_bytes=5)], [Recv(peer=0, size_bytes=6)]])
    with pytest.raises(WorkloadError, match="not an earlier op"):
        Workload(1, [[Compute(duration_s=1, deps=(0,))]])
    with pytest.raises(WorkloadError, match="not in its collective's group"):
        Workload(3, [[ring(2)], [ring(2)], [ring(2)]])
    with pytest.raises(WorkloadError, match="iteration 1 >= iterations 1"):
        Workload(1, [[Compute(duration_s=1, iteration=1)]])


def test_scaled_multiplies_bytes_only_and_keeps_one_byte():
    w = small_workload()
    s = w.scaled(1e-3)
    assert s.ops[0][1].size_bytes == 1  # 1000 * 1e-3
    assert s.ops[0][2].size_bytes == 1  # 10 * 1e-3 rounds to 0 -> kept at 1 byte
    assert s.ops[0][0].duration_s == 0.5
    assert s.meta["rate_scale"] == pytest.approx(1e-3)
    assert w.scaled(2).ops[1][2].size_bytes == 20
    with pytest.raises(WorkloadError, match="rate_scale"):
        w.scaled(0)


def test_jsonl_round_trip(tmp_path):
    w = small_workload()
    path = tmp_path / "w.jsonl"
    write_jsonl(w, path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "lasermesh-workload"
    assert len(lines) == 1 + 6
    assert read_jsonl(path) == w


def _write(tmp_path, lines):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = json.dumps({"format": "lasermesh-workload", "version": 1, "n_ranks": 2, "iterations": 1, "meta": {}})
OP0 = '{"rank": 0, "id": 0, "type": "compute", "duration_s": 1}'


@pytest.mark.parametrize("lines, where, words", [
    ([HEADER, OP0, '{"rank": 0, "id": 1, "type": "compute", "duration_s": 1, "colour": 3}'], ":3:", "unknown key"),
    ([HEADER, OP0, '{"rank": 0, "id": 1, "type": "compute", "duration_s": NaN}'], ":3:", "NaN"),
    ([HEADER, OP0, '{"rank": 0, "id": 1, "type": "compute", "type": "send"}'], ":3:", "duplicate key"),
    ([HEADER, '{"rank": 0, "id": 1, "type": "compute", "duration_s": 1}'], ":2:", "op id must be 0"),
    ([HEADER, '{"rank": 5, "id": 0, "type": "compute", "duration_s": 1}'], ":2:", "rank must be"),
    ([HEADER, OP0, '{"rank": 0, "id": 1, "type": "compute", "duration_s": 1, "deps": [3]}'], ":3:", "earlier op"),
    ([HEADER, '{"rank": 0, "id": 0, "type": "collective", "kind": "all_reduce", "size_bytes": 5, "group": [0, 1]}'],
     "bad.jsonl:", "issues 1 collectives but rank 1 issues 0"),
    ([HEADER, OP0, ""], ":3:", "empty line"),
    ([HEADER.replace('"version": 1', '"version": 2'), OP0], ":1:", "version"),
    ([HEADER.replace('"meta": {}', '"meta": {}, "extra": 1'), OP0], ":1:", "header keys"),
    ([HEADER, '{"rank": 0, "id": 0, "type": "teleport"}'], ":2:", "unknown op type"),
    ([HEADER, '{"rank": 0, "id": 0, "type": "send", "size_bytes": 3}'], ":2:", "missing"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, lines, where, words):
    path = _write(tmp_path, lines)
    with pytest.raises(WorkloadError) as err:
        read_jsonl(path)
    message = str(err.value)
    assert str(path) in message and where in message and words in message

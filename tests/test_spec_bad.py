"""Malformed experiment specs: each file in tests/specs/bad/ must fail with exactly the
problems its ``# expect:`` lines name (``{here}`` stands for the file's folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import InputError
from testbed.spec import SpecError, load_spec

BAD = Path(__file__).resolve().parent / "specs" / "bad"
BAD_SPECS = sorted(BAD.glob("*.toml"))


def expected_problems(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("# expect: ", 1)[1].replace("{here}", str(path.parent))
            for line in lines if line.startswith("# expect: ")]


def test_there_are_enough_malformed_specs():
    assert len(BAD_SPECS) >= 15
    assert sum(len(expected_problems(p)) for p in BAD_SPECS) >= 40


@pytest.mark.parametrize("path", BAD_SPECS, ids=[p.stem for p in BAD_SPECS])
def test_malformed_spec_reports_exactly_its_problems(path):
    expected = expected_problems(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == 2
    assert sorted(error.problems) == sorted(expected)
    # str(error): one line per problem, each prefixed with the spec path
    assert str(error).splitlines() == [f"{path}: {p}" for p in error.problems]


def test_several_problems_in_one_file_are_all_reported_in_file_order():
    problems = load_problems(BAD / "bad_algorithms.toml")
    assert [p.split(":")[0].split(".")[0] for p in problems] == [
        "algorithms[0]", "algorithms[1]", "algorithms[2]", "algorithms[4]", "algorithms[5]"]


def load_problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value.problems


def test_missing_spec_file(tmp_path):
    problems = load_problems(tmp_path / "nope.toml")
    assert problems == ("no such spec file",)

"""The repository stands alone and installs on Python 3.10-3.13. Pure: no root, no network.

- nothing tracked refers to a folder beside the repository;
- every source file parses with Python 3.10's grammar and uses no standard-library
  name newer than 3.10 (``tomllib`` only behind its ``tomli`` fallback);
- pyproject.toml declares what the code imports, and imports what it declares;
- LICENSE, CITATION.cff and data/README.md agree with pyproject.toml and data/.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, REPO

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES = ("testbed", "controllers", "topologies")

#: Standard-library names that Python 3.10 lacks: (module, name) -> version that added it.
NEWER_THAN_310 = {
    ("typing", "Self"): "3.11", ("typing", "Never"): "3.11", ("typing", "LiteralString"): "3.11",
    ("typing", "assert_never"): "3.11", ("typing", "assert_type"): "3.11", ("typing", "reveal_type"): "3.11",
    ("typing", "TypeVarTuple"): "3.11", ("typing", "Unpack"): "3.11", ("typing", "Required"): "3.11",
    ("typing", "NotRequired"): "3.11", ("typing", "dataclass_transform"): "3.11", ("typing", "override"): "3.12",
    ("datetime", "UTC"): "3.11", ("enum", "StrEnum"): "3.11", ("enum", "verify"): "3.11",
    ("asyncio", "TaskGroup"): "3.11", ("asyncio", "timeout"): "3.11", ("contextlib", "chdir"): "3.11",
    ("hashlib", "file_digest"): "3.11", ("itertools", "batched"): "3.12",
}
NEWER_BUILTINS = {"ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11"}
#: Distribution name -> the module the code imports.
IMPORT_NAME = {"skyfield-data": "skyfield_data", "os-ken": "os_ken", "protobuf": "google.protobuf"}


def tracked(*patterns: str) -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--", *patterns], capture_output=True,
                         check=True).stdout.decode()
    return [REPO / name for name in out.split("\0") if name]


def python_sources() -> list[Path]:
    return [p for p in tracked("*.py") if "vendor" not in p.relative_to(REPO).parts]


def test_nothing_tracked_refers_to_a_sibling_folder():
    needles = ("../" + "sha" "red", '"sha' 'red"')  # spelled apart so this file does not match itself
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
            for p in tracked() if p.is_file()
            for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            if any(n in line for n in needles)]
    assert hits == []


def _guarded_by_fallback(tree: ast.AST, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(target is n for stmt in node.body for n in ast.walk(stmt)):
            caught = {getattr(h.type, "id", None) for h in node.handlers}
            if caught & {"ModuleNotFoundError", "ImportError"}:
                return True
    if isinstance(tree, ast.Module):  # `if sys.version_info >= (3, 11): import tomllib`
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test) and \
                    any(target is n for stmt in node.body for n in ast.walk(stmt)):
                return True
    return False


def newer_than_310(path: Path) -> list[str]:
    """Problems of one source file on Python 3.10, as ``file:line: what``."""
    source = path.read_text()
    where = path.relative_to(REPO)
    try:
        tree = ast.parse(source, filename=str(path), feature_version=(3, 10))
    except SyntaxError as err:
        return [f"{where}:{err.lineno}: not Python 3.10 syntax: {err.msg}"]
    problems = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names) \
                and not _guarded_by_fallback(tree, node):
            problems.append(f"{where}:{line}: tomllib (3.11) without the tomli fallback")
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in NEWER_THAN_310:
                    problems.append(f"{where}:{line}: {node.module}.{alias.name} "
                                    f"({NEWER_THAN_310[node.module, alias.name]})")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                (node.value.id, node.attr) in NEWER_THAN_310:
            problems.append(f"{where}:{line}: {node.value.id}.{node.attr} ({NEWER_THAN_310[node.value.id, node.attr]})")
        if isinstance(node, ast.Name) and node.id in NEWER_BUILTINS:
            problems.append(f"{where}:{line}: {node.id} ({NEWER_BUILTINS[node.id]})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_note":
            problems.append(f"{where}:{line}: BaseException.add_note (3.11)")
    return problems


def test_sources_run_on_python_310():
    problems = [p for path in python_sources() for p in newer_than_310(path)]
    assert problems == []


def test_the_checker_sees_what_310_lacks(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("import tomllib\nfrom datetime import UTC\nimport enum\nclass K(enum.StrEnum): pass\n"
                   "try:\n    pass\nexcept* ValueError:\n    pass\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (problem,) = newer_than_310(bad)  # the syntax error hides the rest
    assert re.match(r"bad.py:\d+: not Python 3.10 syntax", problem)  # the message differs by version
    bad.write_text(bad.read_text().split("try:")[0])
    assert newer_than_310(bad) == ["bad.py:1: tomllib (3.11) without the tomli fallback", "bad.py:2: datetime.UTC (3.11)",
                                   "bad.py:4: enum.StrEnum (3.11)"]
    bad.write_text("try:\n    import tomllib\nexcept ModuleNotFoundError:\n    import tomli as tomllib\n")
    assert newer_than_310(bad) == []


def test_python_versions_declared():
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.10,<3.14"
    listed = sorted(c.rsplit(" ", 1)[-1] for c in project["classifiers"]
                    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert listed == ["3.10", "3.11", "3.12", "3.13"]
    assert 'tomli>=1.1,<3; python_version < "3.11"' in project["dependencies"]


def _distribution(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def test_declared_dependencies_are_imported_and_imports_are_declared():
    declared = {_distribution(r) for r in PYPROJECT["project"]["dependencies"]}
    imported = set()
    for path in python_sources():
        if path.relative_to(REPO).parts[0] not in PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
    unused = sorted(d for d in declared
                    if not any(m == IMPORT_NAME.get(d, d) or m.startswith(IMPORT_NAME.get(d, d) + ".")
                               for m in imported))
    assert unused == []
    # tomllib: standard library from 3.11, imported behind the tomli fallback
    third_party = {m.split(".")[0] for m in imported} - set(sys.stdlib_module_names) - set(PACKAGES) - {"tomllib"}
    known = {IMPORT_NAME.get(d, d).split(".")[0] for d in declared} | {"mininet"}  # mininet: Debian's package
    assert sorted(third_party - known) == []


def test_licence_and_citation_agree_with_pyproject():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    citation = (REPO / "CITATION.cff").read_text()
    assert re.search(r'^cff-version: 1\.2\.0$', citation, re.M)
    assert re.search(r'^license: Apache-2\.0$', citation, re.M)
    assert re.search(r'^version: "([^"]+)"$', citation, re.M).group(1) == PYPROJECT["project"]["version"]
    for name in PYPROJECT["project"]["license-files"]:
        assert (REPO / name).is_file(), name


def test_every_data_file_has_its_provenance():
    readme = (DATA / "README.md").read_text()
    entries = sorted({p.relative_to(DATA).parts[0] if p.parent == DATA else
                      re.sub(r"^(all_gather|all_reduce|all_to_all|reduce_scatter)_8npus_1MB$",
                             "<collective>_8npus_1MB", p.relative_to(DATA / "chakra").parts[0])
                      for p in DATA.rglob("*") if p.is_file() and "LICENSES" not in p.parts
                      and p.name != "README.md"})
    missing = [e for e in entries if e not in readme]
    assert missing == []
    for licence in (DATA / "LICENSES").iterdir():
        assert licence.name in readme

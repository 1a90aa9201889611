"""The examples: the script runs for real (emulation), the notebook is its tested twin."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, leftovers

EXAMPLES = REPO / "examples"


def test_the_notebook_runs_the_same_steps_as_the_script():
    """Every assignment of the script's main() (load the spec, run it, load the results, the
    RTT comparison) is a statement of the notebook's code cells, in the same order."""
    import ast
    nb = json.loads((EXAMPLES / "widest.ipynb").read_text())
    cells = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    in_notebook = [ast.unparse(n) for n in ast.parse(cells).body]
    script = ast.parse((EXAMPLES / "run_widest.py").read_text())
    main = next(n for n in script.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    steps = [ast.unparse(n) for n in main.body if isinstance(n, ast.Assign)]
    assert len(steps) >= 5
    assert [s for s in in_notebook if s in steps] == steps


@pytest.mark.emulation
def test_the_example_script_runs_a_users_algorithm_and_compares(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "run_widest.py"), str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "widest: median RTT above the geometric RTT" in r.stdout
    assert "min_delay: median RTT above the geometric RTT" in r.stdout
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}

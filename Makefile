# One-command entry points (run as root on Debian 12 / Ubuntu 22.04+).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-ok

.PHONY: setup demo test test-fast clean bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m testbed demo

test: setup
	bash scripts/run-tests.sh

# Pure tests only: no root, no network
test-fast: setup
	$(PY) -m pytest -q -m "not emulation"

clean:
	-$(PY) -m testbed clean

# Speed and memory goals (figures and commands in BENCHMARKS.md); several need root + OVS.
bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

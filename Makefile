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

bench: setup
	$(PY) -m benchmarks

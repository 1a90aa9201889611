# One-command entry points (as root on Debian 12/13 / Ubuntu 22.04/24.04; test-fast needs no root).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-ok

.PHONY: setup venv demo test test-fast test-uml uml clean bench

setup:
	@bash scripts/setup.sh

# Only .venv from /usr/bin/python3: no root, no apt, no Open vSwitch
venv:
	@bash scripts/setup.sh --venv-only

demo: setup
	$(PY) -m testbed demo

test: setup
	bash scripts/run-tests.sh

# The emulation tests again inside a User-Mode Linux guest (netem + OVS kernel datapath)
test-uml: setup
	LMTB_LANES=uml-netem bash scripts/run-tests.sh

# Pure tests only: no root, no network
test-fast: venv
	$(PY) -m pytest -q -m "not emulation"

# A command inside a User-Mode Linux guest (netem + OVS kernel datapath; scripts/uml.sh):
#   make uml                      -> testbed doctor in the guest
#   make uml CMD="ip -V"          -> any command, run in this folder
uml: setup
	bash scripts/uml.sh $(or $(CMD),$(PY) -m testbed doctor)

clean:
	-$(PY) -m testbed clean

# Speed and memory goals (figures and commands in BENCHMARKS.md); several need root + OVS.
bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

"""Experiment specs: one TOML file describes a whole comparison (see experiments/README.md).

Front door::

    from testbed.spec import load_spec
    spec = load_spec("experiments/default.toml")     # raises SpecError with every problem
    schedule = topologies.generate(spec.schedule_config())
    for algorithm in spec.algorithms: ...

``testbed check SPEC`` (:func:`check_command`) validates a spec offline.
"""

from testbed.spec.check import add_check_arguments, check_command, summary_lines
from testbed.spec.load import load_spec
from testbed.spec.model import (AlgorithmSpec, BackgroundSpec, PcapSpec, PlacementSpec, ProbeSpec, Spec, SpecError, WorkloadSpec,
                    resolve_host)

__all__ = [
    "AlgorithmSpec", "BackgroundSpec", "PcapSpec", "PlacementSpec", "ProbeSpec", "Spec", "SpecError", "WorkloadSpec",
    "add_check_arguments", "check_command", "load_spec", "resolve_host", "summary_lines",
]

"""Scheduled faults that follow the orbit (``[[faults]]`` in a spec): lost lasers and
satellites, compute resets (more often inside the South Atlantic Anomaly), controller
outages. :mod:`.model` expands them onto a run's timeline (pure)."""

from testbed.faults.model import FAULT_KINDS, FaultEvent, FaultPlan, FaultSpec, apply_faults, in_saa

__all__ = ["FAULT_KINDS", "FaultEvent", "FaultPlan", "FaultSpec", "apply_faults", "in_saa"]

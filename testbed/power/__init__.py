"""Power of compute satellites: sunlight and batteries drive the accelerators' clocks.

:mod:`.model` (pure): :class:`~.model.PowerSpec`, :func:`~.model.evaluate` on the schedule's
``sunlit`` flags, and :func:`~.model.stretched_s`, the wall time of a compute phase when the
clock runs slower.
"""

from testbed.power.model import POLICIES, PowerSpec, PowerState, evaluate, stretched_s

__all__ = ["POLICIES", "PowerSpec", "PowerState", "evaluate", "stretched_s"]

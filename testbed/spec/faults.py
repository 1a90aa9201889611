"""``[[faults]]`` entries of a spec: scheduled faults (see :mod:`testbed.faults.model`)."""

from __future__ import annotations

import dataclasses
import math

from testbed.faults import FAULT_KINDS, FaultSpec
from testbed.spec.checks import Problems, Table, ok

FAULT_KEYS = tuple(f.name for f in dataclasses.fields(FaultSpec))


def read_faults(top: Table, problems: Problems, n_satellites: int | None, duration_s: float | None
                ) -> tuple[FaultSpec, ...]:
    """Every ``[[faults]]`` table, each problem with its key path; node ids must be satellites."""
    if not top.has("faults"):
        return ()
    out = []
    for where, data in top.tables("faults"):
        t = Table(data, where, problems, FAULT_KEYS)
        kind = t.string("kind", required=True, choices=tuple(FAULT_KINDS))
        if not ok(kind):
            continue
        needs = FAULT_KINDS[kind][1]
        horizon = duration_s if isinstance(duration_s, (int, float)) else None
        values = {"kind": kind,
                  "t_s": t.number("t_s", 0.0, required="t_s" in needs, ge=0.0, le=horizon),
                  "duration_s": t.number("duration_s", math.inf, required="duration_s" in needs, gt=0.0),
                  "rate_per_hour": t.number("rate_per_hour", 0.0, required="rate_per_hour" in needs, ge=0.0),
                  "saa_rate_per_hour": t.number("saa_rate_per_hour", 0.0, ge=0.0),
                  "reset_s": t.number("reset_s", 5.0, gt=0.0)}
        for key in ("node", "peer"):
            value = t.number(key, None, required=key in needs, integer=True, ge=0,
                             lt=n_satellites if isinstance(n_satellites, int) else None)
            values[key] = value
        if all(ok(v) for v in values.values()):
            out.append(FaultSpec(**values))
    return tuple(out)

"""Feed messages built from a network plan (see :mod:`controllers.feed` for the protocol)."""

from __future__ import annotations

from typing import Iterable

from testbed.net.plan import NetworkPlan


def topology_message(plan: NetworkPlan) -> dict:
    return {
        "type": "topology",
        "switches": [[s.node_id, s.dpid] for s in plan.switches],
        "ports": [[a, b, port] for (a, b), port in sorted(plan.ports().items())],
        "hosts": [{"ip": h.ip, "switch": h.switch, "port": h.port, "mac": h.mac} for h in plan.hosts],
    }


def link_records(plan: NetworkPlan, delay_s: dict[int, float] | None = None,
                 up: dict[int, bool] | None = None) -> list[dict]:
    """One record per plan link, with current delays/states overriding the plan's initial ones."""
    delay_s = delay_s or {}
    up = up or {}
    return [{"a": lk.a, "b": lk.b, "delay_s": delay_s.get(lk.link_id, lk.delay_s),
             "capacity_bps": lk.rate_bps, "up": up.get(lk.link_id, lk.up)} for lk in plan.links]


def state_message(step: int, t_s: float, links: list[dict], future: Iterable[tuple[float, list[dict]]] = ()) -> dict:
    return {"type": "state", "step": step, "t_s": t_s, "links": links,
            "future": [{"t_s": t, "links": lk} for t, lk in future]}


def state_message_from_plan(plan: NetworkPlan, step: int, t_s: float) -> dict:
    return state_message(step, t_s, link_records(plan))

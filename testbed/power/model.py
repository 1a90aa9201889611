"""Energy of a compute satellite: solar array, battery, bus and accelerator, per schedule step.

Pure and vectorised over satellites (the steps are a recurrence: the battery carries over).
For each step of length ``step_s`` [s] and each compute satellite:

- generation ``solar_w`` [W] while the satellite is sunlit (the schedule's ``sunlit``), else 0;
- demand ``bus_w + accelerator_w x f`` [W], where ``f`` in [0, 1] is the accelerator's clock
  fraction (power is taken as proportional to the clock, a first-order DVFS model);
- the battery (``battery_wh`` [Wh], state of charge ``soc`` in [0, 1]) takes the surplus
  (charging is capped at full) and covers the deficit down to ``reserve_soc``.

``f`` is 1 while the battery can cover the deficit for the whole step; when it cannot, the
``policy`` decides: ``"throttle"`` runs at the largest fraction the energy allows, but never
below ``throttle_fraction`` — below that it pauses (f = 0); ``"pause"`` stops the accelerator
(f = 0). The bus is always fed first (a satellite that cannot feed its bus is out of scope).

Figures to start from (documented in experiments/README.md with their sources): an NVIDIA H100
SXM draws up to 700 W (its TDP); Starcloud-1 carried one H100 on a ~60 kg satellite; a
Starlink V2-mini's arrays are ~100 m^2 of panels (order of 10-20 kW in sunlight). In low Earth
orbit a satellite spends up to ~35 % of each ~95 min orbit in eclipse, except in dawn-dusk
sun-synchronous orbits, which stay (almost) always sunlit.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

POLICIES = ("throttle", "pause")


@dataclass(frozen=True)
class PowerSpec:
    """One compute satellite's power budget (the same for every compute satellite of a spec).

    Attributes
    ----------
    solar_w : float
        Array output while sunlit [W].
    battery_wh : float
        Usable battery capacity [Wh].
    initial_soc : float
        State of charge at the schedule's first step, 0..1.
    bus_w : float
        Everything but the accelerator (avionics, lasers, thermal) [W], always on.
    accelerator_w : float
        Accelerator power at full clock [W].
    policy : str
        ``"throttle"`` or ``"pause"`` when energy runs short (see the module docstring).
    throttle_fraction : float
        Lowest clock fraction the ``throttle`` policy runs at before pausing, 0..1.
    reserve_soc : float
        State of charge the battery is never drawn below for the accelerator, 0..1.
    """

    solar_w: float = 2000.0
    battery_wh: float = 1000.0
    initial_soc: float = 1.0
    bus_w: float = 300.0
    accelerator_w: float = 700.0
    policy: str = "throttle"
    throttle_fraction: float = 0.25
    reserve_soc: float = 0.2

    def problems(self) -> list[tuple[str, str]]:
        """(key, problem) for every bad field, all at once."""
        out = []
        for key in ("solar_w", "battery_wh", "bus_w", "accelerator_w"):
            if not (np.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                out.append((key, f"must be a finite number >= 0, got {getattr(self, key)!r}"))
        for key in ("initial_soc", "throttle_fraction", "reserve_soc"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                out.append((key, f"must be between 0 and 1, got {getattr(self, key)!r}"))
        if self.policy not in POLICIES:
            out.append(("policy", f"must be one of {', '.join(map(repr, POLICIES))}, got {self.policy!r}"))
        return out


@dataclass(frozen=True)
class PowerState:
    """Per step and compute satellite, arrays of shape ``(n_steps, n_sats)``.

    ``soc`` is the state of charge at the *start* of each step; ``available_w`` what the
    array and the battery (above the reserve) could supply during the step [W];
    ``clock_fraction`` the accelerator's clock fraction during the step; ``sunlit`` as given.
    """

    soc: np.ndarray
    available_w: np.ndarray
    clock_fraction: np.ndarray
    sunlit: np.ndarray


def evaluate(power: PowerSpec, sunlit: np.ndarray, step_s: float) -> PowerState:
    """The power state of every compute satellite at every step (``sunlit``: (n_steps, n_sats) bool)."""
    sunlit = np.asarray(sunlit, dtype=bool)
    n_steps, n_sats = sunlit.shape
    dt_h = step_s / 3600.0
    soc = np.empty((n_steps, n_sats))
    available = np.empty((n_steps, n_sats))
    fraction = np.empty((n_steps, n_sats))
    cap_wh = max(power.battery_wh, 1e-12)
    charge_wh = np.full(n_sats, power.initial_soc * power.battery_wh)
    reserve_wh = power.reserve_soc * power.battery_wh
    for k in range(n_steps):
        soc[k] = charge_wh / cap_wh
        gen_w = np.where(sunlit[k], power.solar_w, 0.0)
        usable_wh = np.maximum(charge_wh - reserve_wh, 0.0)
        available[k] = gen_w + usable_wh / dt_h
        spare_w = available[k] - power.bus_w                      # what the accelerator may draw
        full = spare_w >= power.accelerator_w
        if power.accelerator_w > 0:
            allowed = np.clip(spare_w / power.accelerator_w, 0.0, 1.0)
        else:
            allowed = np.ones(n_sats)
        if power.policy == "throttle":
            f = np.where(full, 1.0, np.where(allowed >= power.throttle_fraction, allowed, 0.0))
        else:
            f = np.where(full, 1.0, 0.0)
        fraction[k] = f
        net_w = gen_w - power.bus_w - power.accelerator_w * f
        charge_wh = np.clip(charge_wh + net_w * dt_h, 0.0, power.battery_wh)
    return PowerState(soc, available, fraction, sunlit)


def stretched_s(work_s: float, t0_s: float, times_s: np.ndarray, fraction: np.ndarray,
                max_s: float = 1e9) -> float:
    """Wall duration of ``work_s`` seconds of full-clock compute started at ``t0_s`` when the clock
    runs at ``fraction[k]`` from ``times_s[k]`` on (a step function; the last value holds).

    Returns ``max_s`` if the work cannot finish (the clock is paused from some point on)."""
    if work_s <= 0:
        return 0.0
    times_s = np.asarray(times_s, float)
    k = max(0, int(np.searchsorted(times_s, t0_s, side="right")) - 1)
    t, left = t0_s, work_s
    while True:
        f = float(fraction[k])
        end = float(times_s[k + 1]) if k + 1 < len(times_s) else np.inf
        if f > 0 and t + left / f <= end:
            return min(t + left / f - t0_s, max_s)
        if not np.isfinite(end):
            return max_s
        left -= f * (end - t)
        t, k = end, k + 1
        if t - t0_s >= max_s:
            return max_s


"""Walker shells and the named constellation presets.

A Walker shell ``i:T/P/F`` has ``P`` circular orbital planes of ``S = T/P``
satellites each at the same altitude and inclination.  Plane ``p`` has right
ascension of the ascending node (RAAN)

* delta pattern: ``raan = raan_offset + p * 360 / P``   (planes span 360 deg)
* star pattern:  ``raan = raan_offset + p * 180 / P``   (planes span 180 deg;
  the first and last plane counter-rotate across a "seam")

and satellite ``s`` of plane ``p`` has mean anomaly (= argument of latitude,
the orbits being circular) ``u = s * 360 / S + p * F * 360 / T`` at the epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import as_float, as_int, as_str, reject_unknown
from .errors import TopologyError

#: Walker patterns and the RAAN span of their planes [deg].
PATTERN_RAAN_SPAN_DEG = {"delta": 360.0, "star": 180.0}


@dataclass(frozen=True)
class Shell:
    """One Walker shell.

    Attributes
    ----------
    planes : int
        Number of orbital planes ``P`` (>= 1).
    sats_per_plane : int
        Satellites per plane ``S`` (>= 1).
    altitude_km : float
        Altitude above the WGS-72 equatorial radius [km], > 0.
    inclination_deg : float
        Orbital inclination [deg], 0..180.
    phasing : int
        Walker phasing factor ``F``, 0 <= F < P.
    pattern : str
        ``"delta"`` or ``"star"``.
    name : str
        Used in node names; empty means ``"shell<i>"``.
    capacity_bps : float or None
        Capacity of this shell's laser links [bit/s]; ``None`` uses the
        schedule's ``capacity_bps``.
    raan_offset_deg : float
        RAAN of plane 0 [deg].
    """

    planes: int
    sats_per_plane: int
    altitude_km: float
    inclination_deg: float
    phasing: int = 1
    pattern: str = "delta"
    name: str = ""
    capacity_bps: float | None = None
    raan_offset_deg: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "planes", as_int(self.planes, "planes", min_value=1))
        set_(self, "sats_per_plane",
             as_int(self.sats_per_plane, "sats_per_plane", min_value=1))
        set_(self, "altitude_km", as_float(self.altitude_km, "altitude_km", gt=0.0,
                                           le=35_786.0 * 3))
        set_(self, "inclination_deg",
             as_float(self.inclination_deg, "inclination_deg", ge=0.0, le=180.0))
        phasing = as_int(self.phasing, "phasing", min_value=0)
        if phasing >= max(self.planes, 1) and self.planes > 1:
            raise TopologyError(
                f"must be < planes ({self.planes}), got {phasing}", "phasing")
        set_(self, "phasing", phasing if self.planes > 1 else 0)
        set_(self, "pattern", as_str(self.pattern, "pattern",
                                     choices=PATTERN_RAAN_SPAN_DEG))
        if not isinstance(self.name, str):
            raise TopologyError(f"must be a string, got {self.name!r}", "name")
        if self.capacity_bps is not None:
            set_(self, "capacity_bps",
                 as_float(self.capacity_bps, "capacity_bps", gt=0.0))
        set_(self, "raan_offset_deg",
             as_float(self.raan_offset_deg, "raan_offset_deg", ge=-360.0, le=360.0))

    @property
    def n_sats(self) -> int:
        """Total satellites ``T = P * S``."""
        return self.planes * self.sats_per_plane

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Shell":
        """Build from a plain dict, rejecting unknown keys."""
        if not isinstance(data, Mapping):
            raise TopologyError(f"must be a table/dict, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        reject_unknown(data, known, None)
        missing = [k for k in ("planes", "sats_per_plane", "altitude_km",
                               "inclination_deg") if k not in data]
        if missing:
            raise TopologyError("missing required key", missing[0])
        return cls(**dict(data))

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``Shell.from_dict(s.to_dict()) == s``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Preset:
    """A named constellation: one or more shells and where the numbers come from."""

    shells: tuple[Shell, ...]
    description: str

    @property
    def n_sats(self) -> int:
        return sum(s.n_sats for s in self.shells)


#: Named constellations.  Phasing factors are not all published; where they are
#: not, F=1 is used (the +Grid policy matches neighbours by argument of
#: latitude, so any F gives a valid grid).
PRESETS: dict[str, Preset] = {
    "starlink_shell1": Preset(
        (Shell(72, 22, 550.0, 53.0, phasing=1, pattern="delta",
               name="starlink_shell1"),),
        "SpaceX Starlink Gen1 shell 1 (FCC filing): 72 planes x 22, 550 km, 53 deg"),
    "kuiper_shell1": Preset(
        (Shell(34, 34, 630.0, 51.9, phasing=1, pattern="delta",
               name="kuiper_shell1"),),
        "Amazon Kuiper shell 1 (FCC filing): 34 planes x 34, 630 km, 51.9 deg"),
    "iridium": Preset(
        (Shell(6, 11, 780.0, 86.4, phasing=3, pattern="star", name="iridium"),),
        "Iridium-like polar star: 6 planes x 11, 780 km, 86.4 deg; F=3 puts "
        "adjacent planes half a slot apart"),
    "starlink_v3": Preset(
        (Shell(28, 120, 525.0, 53.0, phasing=1, pattern="delta",
               name="starlink_v3", capacity_bps=200e9),),
        "Starlink-V3-like shell: the Gen2 525 km / 53 deg shell (28 planes x 120, "
        "FCC 2022 authorisation) with 200 Gbps laser links"),
    # Small shells for tests.  A +Grid needs every neighbour in line of sight
    # with the 80 km grazing margin: with S satellites per plane the in-plane
    # neighbours are 360/S deg apart, so sparse shells must fly higher.  All
    # stay below 225 min period (near-Earth SGP4).
    "test4x4": Preset(
        (Shell(4, 4, 5000.0, 53.0, phasing=1, pattern="delta", name="test4x4"),),
        "test shell: 4 planes x 4 at 5000 km, 53 deg (connected +Grid)"),
    "test6x6": Preset(
        (Shell(6, 6, 2000.0, 53.0, phasing=1, pattern="delta", name="test6x6"),),
        "test shell: 6 planes x 6 at 2000 km, 53 deg (connected +Grid)"),
    "test8x8": Preset(
        (Shell(8, 8, 1200.0, 53.0, phasing=1, pattern="delta", name="test8x8"),),
        "test shell: 8 planes x 8 at 1200 km, 53 deg (connected +Grid)"),
}


def shells_from_list(items: Any, field: str = "shell") -> tuple[Shell, ...]:
    """Build shells from a list of dicts or Shells; errors name ``shell[i].key``."""
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):
        raise TopologyError("must be a list of shell tables", field + "s")
    shells: list[Shell] = []
    for i, item in enumerate(items):
        try:
            shells.append(item if isinstance(item, Shell) else Shell.from_dict(item))
        except TopologyError as err:
            raise err.with_prefix(f"{field}[{i}]") from None
    if not shells:
        raise TopologyError("must list at least one shell", field + "s")
    return tuple(shells)

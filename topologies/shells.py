"""Walker shells and the named constellation presets.

A Walker shell ``i:T/P/F`` has ``P`` circular orbital planes of ``S = T/P``
satellites each at the same altitude and inclination.  Plane ``p`` has right
ascension of the ascending node (RAAN)

* delta pattern: ``raan = raan_offset + p * 360 / P``   (planes span 360 deg)
* star pattern:  ``raan = raan_offset + p * 180 / P``   (planes span 180 deg;
  the first and last plane counter-rotate across a "seam")

and satellite ``s`` of plane ``p`` has mean anomaly (= argument of latitude,
the orbits being circular) ``u = s * 360 / S + p * F * 360 / T + o_p * 360 / S``
at the epoch, with ``o_p = odd_plane_offset_slots`` for odd ``p`` and 0 for even.

Phase offsets between planes: the Walker factor ``F`` shifts each plane by
``F / P`` of a slot relative to the previous one (cumulative), so ``F = P / 2``
puts adjacent planes half a slot apart -- the same *positions* as Hypatia's
``phase_diff`` shells, but plane ``p`` slot ``s`` then sits ``p / 2`` slots
further on.  ``odd_plane_offset_slots = 0.5`` (with ``F = 0``) is Hypatia's
convention exactly: odd planes half a slot ahead, slots numbered from the same
anomaly in every plane, so Hypatia's ``isl_shift`` carries over as
``pairing = "index"``, ``shift = isl_shift``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import as_float, as_int, as_str, reject_unknown
from .errors import Collector, TopologyError

#: Walker patterns and the RAAN span of their planes [deg].
PATTERN_RAAN_SPAN_DEG = {"delta": 360.0, "star": 180.0}


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(f"must be a string, got {value!r}", field)
    return value


#: Field checks of :class:`Shell`, ``check(value, field) -> value``, in report order.
_SHELL_CHECKS = {
    "planes": lambda v, f: as_int(v, f, min_value=1),
    "sats_per_plane": lambda v, f: as_int(v, f, min_value=1),
    "altitude_km": lambda v, f: as_float(v, f, gt=0.0, le=35_786.0 * 3),
    "inclination_deg": lambda v, f: as_float(v, f, ge=0.0, le=180.0),
    "phasing": lambda v, f: as_int(v, f, min_value=0),
    "pattern": lambda v, f: as_str(v, f, choices=PATTERN_RAAN_SPAN_DEG),
    "name": _name,
    "capacity_bps": lambda v, f: None if v is None else as_float(v, f, gt=0.0),
    "raan_offset_deg": lambda v, f: as_float(v, f, ge=-360.0, le=360.0),
    "odd_plane_offset_slots": lambda v, f: as_float(v, f, ge=0.0, lt=1.0),
}
_REQUIRED = ("planes", "sats_per_plane", "altitude_km", "inclination_deg")


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
    odd_plane_offset_slots : float
        Odd planes' extra mean-anomaly offset, in slots (0 <= o < 1); Hypatia's
        ``phase_diff = True`` is 0.5 (with ``phasing = 0``).
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
    odd_plane_offset_slots: float = 0.0

    def __post_init__(self) -> None:
        c = Collector()
        checked = {name: c.check(check, getattr(self, name), name)
                   for name, check in _SHELL_CHECKS.items()}
        if isinstance(checked["planes"], int) and isinstance(checked["phasing"], int):
            if checked["planes"] > 1 and checked["phasing"] >= checked["planes"]:
                c.add(f"must be < planes ({checked['planes']}), got {checked['phasing']}", "phasing")
            elif checked["planes"] == 1:
                checked["phasing"] = 0
        c.raise_if_any()
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def n_sats(self) -> int:
        """Total satellites ``T = P * S``."""
        return self.planes * self.sats_per_plane

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Shell":
        """Build from a plain dict; unknown keys, missing keys and bad values are all reported."""
        if not isinstance(data, Mapping):
            raise TopologyError(f"must be a table/dict, got {type(data).__name__}")
        c = Collector()
        c.check(reject_unknown, data, [f.name for f in dataclasses.fields(cls)], None)
        for key in _REQUIRED:
            if key not in data:
                c.add("missing required key", key)
        if not c.ok:     # still check the values that are there
            for key, check in _SHELL_CHECKS.items():
                if key in data:
                    c.check(check, data[key], key)
        c.raise_if_any()
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


#: Named constellations, with the public source of their numbers.  Phasing
#: factors are rarely published; where they are not, F=1 is used (the +Grid
#: pairs neighbours by argument of latitude, so any F gives a valid grid).
#: FCC filings are cited by their IBFS file number (https://fcc.report/IBFS/...).
PRESETS: dict[str, Preset] = {
    "starlink_shell1": Preset(
        (Shell(72, 22, 550.0, 53.0, phasing=1, pattern="delta",
               name="starlink_shell1"),),
        "SpaceX Starlink Gen1 shell 1 (FCC SAT-MOD-20200417-00037): 72 planes x 22, "
        "550 km, 53 deg"),
    "starlink_shell1_hypatia": Preset(
        (Shell(72, 22, 550.0, 53.0, phasing=0, pattern="delta", odd_plane_offset_slots=0.5,
               name="starlink_shell1"),),
        "Starlink shell 1 as Hypatia generates it (Kassing et al., IMC 2020; snkas/hypatia "
        "satgenpy, phase_diff=True): 72 x 22, 550 km, 53 deg, odd planes half a slot ahead"),
    "starlink_gen1": Preset(
        (Shell(72, 22, 550.0, 53.0, name="starlink_550"),
         Shell(72, 22, 540.0, 53.2, name="starlink_540"),
         Shell(36, 20, 570.0, 70.0, name="starlink_570"),
         Shell(6, 58, 560.0, 97.6, name="starlink_560a"),
         Shell(4, 43, 560.0, 97.6, name="starlink_560b")),
        "SpaceX Starlink Gen1, all five shells as authorised in April 2021 (FCC 21-48 on "
        "SAT-MOD-20200417-00037): 4,408 satellites"),
    "kuiper_shell1": Preset(
        (Shell(34, 34, 630.0, 51.9, phasing=1, pattern="delta",
               name="kuiper_shell1"),),
        "Amazon Kuiper shell 1 (FCC SAT-LOA-20190704-00057): 34 planes x 34, 630 km, 51.9 deg"),
    "kuiper": Preset(
        (Shell(34, 34, 630.0, 51.9, name="kuiper_630"),
         Shell(36, 36, 610.0, 42.0, name="kuiper_610"),
         Shell(28, 28, 590.0, 33.0, name="kuiper_590")),
        "Amazon Kuiper, the three shells of FCC SAT-LOA-20190704-00057 (authorised 2020, "
        "FCC 20-102): 3,236 satellites"),
    "oneweb": Preset(
        (Shell(36, 49, 1200.0, 87.9, pattern="star", name="oneweb"),),
        "OneWeb polar shell of the 2020 modification (FCC SAT-MPL-20200526-00062): "
        "36 planes x 49, 1,200 km, 87.9 deg (the deployed Phase 1, 12 planes x 49, is in "
        "the 2022 OneWeb TLE set)"),
    "telesat": Preset(
        (Shell(27, 13, 1015.0, 98.98, pattern="delta", name="telesat_polar"),
         Shell(40, 33, 1325.0, 50.88, pattern="delta", name="telesat_inclined")),
        "Telesat Lightspeed (FCC SAT-MPL-20200526-00053): polar 27 planes x 13 at 1,015 km, "
        "98.98 deg (as in Hypatia) and inclined 40 x 33 at 1,325 km, 50.88 deg"),
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
    """Build shells from a list of dicts or Shells; every problem is reported, naming
    ``shell[i].key``, and so is a shell name used twice (``shell[i].name``)."""
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):
        raise TopologyError("must be a list of shell tables", field + "s")
    c = Collector()
    shells = [item if isinstance(item, Shell) else c.check(Shell.from_dict, item, prefix=f"{field}[{i}]")
              for i, item in enumerate(items)]
    if not shells:
        c.add("must list at least one shell", field + "s")
    seen: set[str] = set()
    for i, shell in enumerate(shells):
        name = (shell.name or f"shell{i}") if isinstance(shell, Shell) else None
        if name in seen:
            c.add(f"duplicate shell name {name!r}", f"{field}[{i}].name")
        elif name is not None:
            seen.add(name)
    c.raise_if_any()
    return tuple(shells)

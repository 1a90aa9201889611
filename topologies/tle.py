"""TLE import: parse 2- or 3-line element sets and place satellites in a grid.

Parsing is strict: every element line must be 69 characters with a valid
modulo-10 checksum and well-formed numeric fields (:mod:`topologies.tlefields`),
line 2 must follow line 1 with the same catalogue number.  Errors name the file
and the 1-based line number (and column, for a malformed field).

Placement infers (shell, plane, slot) from mean elements at a common epoch:

1. shells: satellites are grouped by inclination (a new group where sorted
   inclinations jump by more than ``inc_gap_deg``) and then by mean altitude
   (jumps of more than ``alt_gap_km``); groups of at least ``min_shell_sats``
   are shells.  Satellites still raising or lowering their orbits fall in
   small groups and stay unplaced.
2. planes: within a shell, RAANs are clustered around the circle (a new plane
   where sorted RAANs jump by more than ``raan_gap_deg``); planes are numbered
   in RAAN order starting after the widest gap.  Planes with fewer than
   ``min_plane_sats`` satellites are unplaced.
3. slots: within a plane, satellites are numbered by argument of latitude.

The last plane neighbours the first (delta-like) when the wrap-around RAAN gap
is at most 1.5 times the median gap between planes.

Hypatia's ``tles.txt`` is read as-is: its first line ``<orbits> <satellites per
orbit>`` is a count header, and then the file's own numbering is kept instead
of the clustering: satellite ``i`` (its name line ``<name> <i>``) is node
``i``, plane ``i // S``, slot ``i % S``, all in one wrapping (delta) shell --
exactly the ids Hypatia's ``isls.txt`` refers to.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sgp4.api import Satrec

from .constants import DAY_S, EARTH_RADIUS_KM
from .errors import TopologyError
from .fleet import Fleet
from .hypatia import header_placement, hypatia_names
from .timebase import require_utc, utc_julian_date
from .tlefields import check_fields

TLE_LINE_LENGTH = 69


@dataclass(frozen=True)
class TleRecord:
    """One element set as read from the file (``line_no`` is that of line 1)."""

    name: str
    line1: str
    line2: str
    line_no: int

    @property
    def satnum(self) -> str:
        return self.line1[2:7].strip()


def tle_checksum(line: str) -> int:
    """Modulo-10 checksum of columns 1-68: digits count their value, '-' counts 1."""
    total = 0
    for ch in line[:68]:
        if ch.isdigit():
            total += int(ch)
        elif ch == "-":
            total += 1
    return total % 10


def _check_line(path: Path, line_no: int, line: str, number: str) -> None:
    where = f"{path}:{line_no}"
    if len(line) < TLE_LINE_LENGTH:
        raise TopologyError(f"{where}: truncated TLE line {number} ({len(line)} characters, "
                            f"expected {TLE_LINE_LENGTH})")
    if len(line) > TLE_LINE_LENGTH:
        raise TopologyError(f"{where}: TLE line {number} too long ({len(line)} characters, "
                            f"expected {TLE_LINE_LENGTH})")
    check_fields(where, line, number)
    last = line[68]
    if not last.isdigit():
        raise TopologyError(f"{where}: TLE line {number} has no checksum digit in column 69")
    expected = tle_checksum(line)
    if int(last) != expected:
        raise TopologyError(f"{where}: bad checksum on TLE line {number} "
                            f"(computed {expected}, file says {last})")


_COUNT_HEADER = re.compile(r"^\s*(\d+)\s+(\d+)\s*$")


def count_header(text: str) -> tuple[int, int] | None:
    """Hypatia's first line ``<orbits> <satellites per orbit>``, if the file has one."""
    for line in text.splitlines():
        if line.strip():
            match = _COUNT_HEADER.match(line)
            return (int(match.group(1)), int(match.group(2))) if match else None
    return None


def parse_tle_text(text: str, path: Path | str = "<string>") -> list[TleRecord]:
    """Parse 2- or 3-line element sets; raises naming ``path:line`` on any problem.

    A first line ``<orbits> <satellites per orbit>`` (Hypatia's count header)
    is skipped; see :func:`count_header`.
    """
    path = Path(path)
    records: list[TleRecord] = []
    pending_name: tuple[int, str] | None = None
    lines = text.splitlines()
    i = 0
    if count_header(text) is not None:
        while not lines[i].strip():
            i += 1
        i += 1
    while i < len(lines):
        line = lines[i].rstrip()
        line_no = i + 1
        i += 1
        if not line.strip():
            continue
        if line.startswith("1 "):
            _check_line(path, line_no, line, "1")
            while i < len(lines) and not lines[i].strip():
                i += 1
            if i >= len(lines):
                raise TopologyError(f"{path}:{line_no}: TLE line 1 without a line 2 "
                                    "(file truncated?)")
            line2 = lines[i].rstrip()
            line2_no = i + 1
            i += 1
            if not line2.startswith("2 "):
                raise TopologyError(f"{path}:{line2_no}: expected TLE line 2 "
                                    f"(starting '2 '), got {line2[:20]!r}")
            _check_line(path, line2_no, line2, "2")
            if line2[2:7] != line[2:7]:
                raise TopologyError(f"{path}:{line2_no}: catalogue number {line2[2:7]!r} "
                                    f"differs from line 1's {line[2:7]!r}")
            name = pending_name[1] if pending_name else f"NORAD-{line[2:7].strip()}"
            records.append(TleRecord(name, line, line2, line_no))
            pending_name = None
        elif line.startswith("2 "):
            raise TopologyError(f"{path}:{line_no}: TLE line 2 without a preceding line 1")
        else:
            if pending_name is not None:
                raise TopologyError(
                    f"{path}:{pending_name[0]}: name line {pending_name[1]!r} is not "
                    "followed by a TLE line 1 (truncated element set?)")
            name = line.strip()
            if name.startswith("0 "):
                name = name[2:].strip()
            pending_name = (line_no, name)
    if pending_name is not None:
        raise TopologyError(f"{path}:{pending_name[0]}: name line {pending_name[1]!r} is not "
                            "followed by a TLE line 1 (file truncated?)")
    if not records:
        raise TopologyError(f"{path}: no TLE element sets found")
    return records


def _gap_clusters(values: np.ndarray, gap: float) -> np.ndarray:
    """Cluster labels (0, 1, ...) for a 1-D array: new cluster at sorted jumps > gap."""
    order = np.argsort(values, kind="stable")
    labels_sorted = np.concatenate([[0], np.cumsum(np.diff(values[order]) > gap)])
    labels = np.empty(values.size, dtype=np.int64)
    labels[order] = labels_sorted
    return labels


def _circular_clusters(angles_deg: np.ndarray, gap_deg: float) -> np.ndarray:
    """Cluster labels around the circle, numbered from the widest gap onwards."""
    order = np.argsort(angles_deg, kind="stable")
    sorted_deg = angles_deg[order]
    gaps = np.diff(np.r_[sorted_deg, sorted_deg[0] + 360.0])   # gap after each element
    start = (int(np.argmax(gaps)) + 1) % sorted_deg.size
    rolled = np.roll(np.arange(sorted_deg.size), -start)
    rolled_gaps = gaps[rolled]
    labels_rolled = np.concatenate([[0], np.cumsum(rolled_gaps[:-1] > gap_deg)])
    labels = np.empty(angles_deg.size, dtype=np.int64)
    labels[order[rolled]] = labels_rolled
    return labels


def _circular_mean_deg(angles_deg: np.ndarray) -> float:
    rad = np.radians(angles_deg)
    return float(np.degrees(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())) % 360.0)


def _jd_to_datetime(jd: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=(jd - 2440587.5) * DAY_S)


@dataclass(frozen=True, eq=False, repr=False)
class TleSet:
    """A TLE file read and placed.

    Attributes
    ----------
    path : str
    records : tuple of TleRecord
        All element sets in file order.
    epoch : datetime
        Epoch at which the mean elements were compared.
    fleet : Fleet
        The satellites kept (placed ones, plus unplaced if requested).
    placement : dict
        ``n_total``, ``n_placed``, ``n_unplaced``, ``unplaced`` (reason -> count),
        ``shells`` (per shell: name, inclination_deg, altitude_km, planes, satellites).
    """

    path: str
    records: tuple
    epoch: datetime
    fleet: Fleet
    placement: dict

    def __repr__(self) -> str:
        return (f"TleSet({self.path!r}, placed {self.placement['n_placed']} of "
                f"{self.placement['n_total']})")

    def report(self) -> str:
        """One human-readable paragraph on what was placed."""
        p = self.placement
        lines = [f"{self.path}: placed {p['n_placed']} of {p['n_total']} satellites "
                 f"in {len(p['shells'])} shell(s)"]
        for s in p["shells"]:
            lines.append(f"  {s['name']}: {s['satellites']} satellites in {s['planes']} planes "
                         f"({s['inclination_deg']:.2f} deg, ~{s['altitude_km']:.0f} km)")
        for reason, count in sorted(p["unplaced"].items()):
            lines.append(f"  unplaced, {reason}: {count}")
        return "\n".join(lines)


def default_tle_epoch(satrecs, common: bool = False) -> datetime:
    """Latest element-set epoch, rounded up to the next whole minute (UTC).

    ``common``: the element sets share one epoch (Hypatia's files, whose time 0
    is that epoch): it is returned as it is, to the nearest second (the TLE day
    fraction carries 0.86 ms).
    """
    jd = max(s.jdsatepoch + s.jdsatepochF for s in satrecs)
    latest = _jd_to_datetime(jd)
    if common:
        return (latest + timedelta(microseconds=500_000)).replace(microsecond=0)
    rounded = latest.replace(second=0, microsecond=0)
    return rounded if rounded == latest else rounded + timedelta(minutes=1)


def _mean_elements(satrecs, epoch: datetime) -> dict[str, np.ndarray]:
    """SGP4 mean elements of every satellite at ``epoch`` (arrays of shape (n,)).

    Keys: ``ok`` (SGP4 could propagate), ``inc_deg``, ``raan_deg``,
    ``arg_lat_deg`` (mean argument of latitude, first order in eccentricity),
    ``radius_km`` (mean semi-major axis).  One SGP4 call per satellite, once.
    """
    whole, fraction = utc_julian_date(epoch)
    n = len(satrecs)
    out = {"ok": np.ones(n, dtype=bool), "inc_deg": np.zeros(n), "raan_deg": np.zeros(n),
           "arg_lat_deg": np.zeros(n), "radius_km": np.zeros(n)}
    for i, sat in enumerate(satrecs):
        error, _, _ = sat.sgp4(whole, fraction)     # sets the mean elements im, Om, om, mm, am
        if error:
            out["ok"][i] = False
            continue
        out["inc_deg"][i] = math.degrees(sat.im)
        out["raan_deg"][i] = math.degrees(sat.Om) % 360.0
        true_anomaly = sat.mm + 2.0 * sat.em * math.sin(sat.mm)
        out["arg_lat_deg"][i] = math.degrees(sat.om + true_anomaly) % 360.0
        out["radius_km"][i] = sat.am * EARTH_RADIUS_KM
    return out


def _shell_groups(elements: dict, inc_gap_deg: float, alt_gap_km: float) -> list[np.ndarray]:
    """Indices of satellites grouped by inclination, then by mean altitude."""
    candidates = np.flatnonzero(elements["ok"])
    groups = []
    if candidates.size:
        inc_label = _gap_clusters(elements["inc_deg"][candidates], inc_gap_deg)
        for label in np.unique(inc_label):
            members = candidates[inc_label == label]
            alt_label = _gap_clusters(elements["radius_km"][members], alt_gap_km)
            groups.extend(members[alt_label == sub] for sub in np.unique(alt_label))
    return groups


def _place_planes(members: np.ndarray, raan: np.ndarray, arg_lat: np.ndarray,
                  raan_gap_deg: float, min_plane_sats: int, plane: np.ndarray,
                  slot: np.ndarray) -> tuple[int, bool, int]:
    """Assign plane and slot (in place) to the members of one shell.

    Returns (planes kept, whether the last plane neighbours the first,
    satellites dropped in too-small planes).
    """
    plane_label = _circular_clusters(raan[members], raan_gap_deg)
    counts = np.bincount(plane_label)
    kept_labels = np.flatnonzero(counts >= min_plane_sats)
    plane_raans = []
    for new_plane, label in enumerate(kept_labels):
        in_plane = members[plane_label == label]
        in_plane = in_plane[np.argsort(arg_lat[in_plane], kind="stable")]
        plane[in_plane] = new_plane
        slot[in_plane] = np.arange(in_plane.size)
        plane_raans.append(_circular_mean_deg(raan[in_plane]))
    wraps = False
    if len(plane_raans) >= 3:
        gaps = np.diff(np.r_[plane_raans, plane_raans[0] + 360.0]) % 360.0
        wraps = bool(gaps[-1] <= 1.5 * np.median(gaps[:-1]))
    return len(kept_labels), wraps, int(counts[counts < min_plane_sats].sum())


def _cluster_placement(path: Path, elements: dict, unplaced: dict, include_unplaced: bool,
                       inc_gap_deg: float, alt_gap_km: float, min_shell_sats: int,
                       raan_gap_deg: float, min_plane_sats: int):
    """Shells, planes and slots by clustering (module docstring); fills ``unplaced``."""
    ok = elements["ok"]
    n = ok.size
    groups = _shell_groups(elements, inc_gap_deg, alt_gap_km)
    small = [g for g in groups if g.size < min_shell_sats]
    if small:
        unplaced["not in a shell (orbit raising/lowering or sparse)"] = \
            int(sum(g.size for g in small))
    inc, raan, arg_lat, radius = (elements[k] for k in ("inc_deg", "raan_deg", "arg_lat_deg",
                                                         "radius_km"))
    shell_groups = sorted((g for g in groups if g.size >= min_shell_sats),
                          key=lambda g: (round(float(np.median(inc[g])), 1),
                                         round(float(np.median(radius[g])), 3)))
    shell, plane, slot = np.full(n, -1), np.full(n, -1), np.full(n, -1)
    names, wraps, shells_info = [], [], []
    too_small_planes = 0
    for shell_index, members in enumerate(shell_groups):
        n_planes, wrap, dropped = _place_planes(members, raan, arg_lat, raan_gap_deg,
                                                min_plane_sats, plane, slot)
        shell[members[plane[members] >= 0]] = shell_index
        too_small_planes += dropped
        wraps.append(wrap)
        inc_deg = float(np.median(inc[members]))
        alt_km = float(np.median(radius[members]) - EARTH_RADIUS_KM)
        names.append(f"{path.stem}-i{inc_deg:.1f}-h{alt_km:.0f}")
        shells_info.append({"name": names[-1], "inclination_deg": inc_deg,
                            "altitude_km": alt_km, "planes": n_planes,
                            "satellites": int((shell == shell_index).sum())})
    if too_small_planes:
        unplaced[f"plane with fewer than {min_plane_sats} satellites"] = too_small_planes
    stem = path.stem
    placed = np.flatnonzero(shell >= 0)
    placed = placed[np.lexsort((slot[placed], plane[placed], shell[placed]))]
    keep = placed
    if include_unplaced:
        rest = np.flatnonzero(ok & (shell < 0))
        keep = np.concatenate([placed, rest])
        if rest.size:
            names.append(f"{stem}-unplaced")
            wraps.append(False)
            shell[rest] = len(names) - 1
    return shell, plane, slot, keep, names, wraps, shells_info, placed


def load_tle(path: str | Path, *, epoch: datetime | None = None,
             include_unplaced: bool = False, inc_gap_deg: float = 0.1,
             alt_gap_km: float = 5.0, min_shell_sats: int = 10,
             raan_gap_deg: float = 1.0, min_plane_sats: int = 2) -> TleSet:
    """Read a TLE file and place its satellites in (shell, plane, slot).

    Parameters
    ----------
    path : str or Path
        2-line or 3-line (with name lines) TLE file.
    epoch : datetime, optional
        When to compare the orbits; default: latest element epoch rounded up
        to a whole minute.
    include_unplaced : bool
        Keep unplaced satellites in the fleet (plane = slot = -1).
    inc_gap_deg, alt_gap_km, min_shell_sats, raan_gap_deg, min_plane_sats
        Clustering thresholds (see module docstring).

    Raises
    ------
    TopologyError
        Unreadable file, or a bad line (message names ``file:line``).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise TopologyError(f"{path}: cannot read TLE file: {err.strerror or err}") from None
    records = parse_tle_text(text, path)
    satrecs = []
    for rec in records:
        try:
            sat = Satrec.twoline2rv(rec.line1, rec.line2)
        except Exception as err:  # sgp4 raises ValueError and others on bad fields
            raise TopologyError(f"{path}:{rec.line_no}: cannot parse element set: {err}") \
                from None
        satrecs.append(sat)
    header = count_header(text)
    epoch = default_tle_epoch(satrecs, common=header is not None) if epoch is None \
        else require_utc(epoch)
    elements = _mean_elements(satrecs, epoch)
    ok = elements["ok"]
    n = len(records)
    unplaced: dict[str, int] = {}
    if (~ok).any():
        unplaced["cannot propagate to epoch (decayed?)"] = int((~ok).sum())
    inc, raan, arg_lat, radius = (elements[k] for k in ("inc_deg", "raan_deg", "arg_lat_deg",
                                                         "radius_km"))
    if header is not None:
        shell, plane, slot, keep, names, wraps, shells_info = header_placement(
            path, records, elements, header)
    else:
        shell, plane, slot, keep, names, wraps, shells_info, placed = _cluster_placement(
            path, elements, unplaced, include_unplaced, inc_gap_deg, alt_gap_km,
            min_shell_sats, raan_gap_deg, min_plane_sats)
    node_names = [records[i].name for i in keep]
    if header is not None:
        node_names = hypatia_names(node_names)
        placed = keep
    seen: dict[str, int] = {}
    for name in node_names:
        seen[name] = seen.get(name, 0) + 1
    node_names = [f"{name} ({records[k].satnum})" if seen[name] > 1 else name
                  for name, k in zip(node_names, keep)]
    placement = {"source": "tle", "file": str(path), "n_total": n,
                 "count_header": list(header) if header else None,
                 "n_placed": int(placed.size), "n_unplaced": int(n - placed.size),
                 "n_kept": int(keep.size), "unplaced": unplaced, "shells": shells_info}
    fleet = Fleet(
        satrecs=tuple(satrecs[i] for i in keep), names=tuple(node_names),
        shell=shell[keep].astype(np.int64), plane=plane[keep].astype(np.int64),
        slot=slot[keep].astype(np.int64), raan_deg=raan[keep], arg_lat_deg=arg_lat[keep],
        radius_km=radius[keep], capacity_bps=np.full(keep.size, np.nan),
        shell_names=tuple(names), shell_wraps=tuple(wraps), placement=placement)
    return TleSet(str(path), tuple(records), epoch, fleet, placement)

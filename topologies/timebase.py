"""Time handling: the schedule's epoch and step times, as SGP4 and Skyfield need them.

``times_s`` are elapsed (SI, TAI) seconds since the epoch, shape ``(n_steps,)``.
SGP4 takes UTC Julian dates (split into a whole and a fraction, as Skyfield
passes them); Earth rotation uses UT1 from Skyfield's built-in tables.
Everything runs offline: the timescale is ``load.timescale(builtin=True)`` and
the ephemeris comes from the ``skyfield-data`` package.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from .constants import DAY_S
from .errors import TopologyError

_UNIX_EPOCH_JD = 2440587.5



@functools.lru_cache(maxsize=1)
def timescale():
    """Skyfield timescale from built-in tables (no download)."""
    from skyfield.api import load
    return load.timescale(builtin=True)


@functools.lru_cache(maxsize=1)
def ephemeris():
    """The de421 ephemeris shipped by ``skyfield-data`` (no download)."""
    from skyfield.api import Loader
    with warnings.catch_warnings():
        # skyfield-data warns that its bundled EOP file is old; we only read
        # de421.bsp from it, which is valid 1899-2053.
        warnings.simplefilter("ignore", RuntimeWarning)
        import skyfield_data
        path = skyfield_data.get_skyfield_data_path()
    return Loader(path, verbose=False)("de421.bsp")


def require_utc(epoch: datetime, field: str = "epoch") -> datetime:
    """Return ``epoch`` converted to UTC; naive datetimes are rejected."""
    if not isinstance(epoch, datetime):
        raise TopologyError(f"must be a datetime, got {epoch!r}", field)
    if epoch.tzinfo is None or epoch.tzinfo.utcoffset(epoch) is None:
        raise TopologyError("must be timezone-aware (e.g. 2025-01-01T00:00:00Z)", field)
    return epoch.astimezone(timezone.utc)


def format_epoch(epoch: datetime) -> str:
    """ISO 8601 with a ``Z`` suffix (microseconds only when non-zero)."""
    text = epoch.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_epoch(value, field: str = "epoch") -> datetime:
    """Parse an ISO 8601 string (``Z`` or an offset required) or a datetime."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise TopologyError(
                f"not an ISO 8601 date-time: {value!r} (e.g. 2025-01-01T00:00:00Z)",
                field) from None
    return require_utc(value, field)


def utc_julian_date(epoch: datetime) -> tuple[float, float]:
    """UTC Julian date of ``epoch`` as ``(whole, fraction)``; whole ends in .5."""
    epoch = require_utc(epoch)
    since = epoch - datetime(1970, 1, 1, tzinfo=timezone.utc)
    whole = _UNIX_EPOCH_JD + since.days
    fraction = (since.seconds + since.microseconds * 1e-6) / DAY_S
    return whole, fraction


@dataclass(frozen=True, eq=False)
class Timebase:
    """Epoch plus the step times of a schedule.

    Attributes
    ----------
    epoch : datetime
        Timezone-aware UTC datetime of step 0.
    times_s : numpy.ndarray, shape (n_steps,)
        Elapsed seconds since ``epoch``.
    """

    epoch: datetime
    times_s: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "epoch", require_utc(self.epoch))
        times = np.asarray(self.times_s, dtype=float)
        object.__setattr__(self, "times_s", times)
        if times.size:
            # The UTC day fraction below assumes no leap second in the window.
            end = self.epoch + timedelta(seconds=float(times[-1]))
            ts = timescale()
            t0, t1 = ts.from_datetime(self.epoch), ts.from_datetime(end)
            elapsed = (t1.tai - t0.tai) * DAY_S
            if abs(elapsed - float(times[-1])) > 0.5:
                raise TopologyError("the time window contains a leap second; "
                                    "choose an epoch that avoids it", "epoch")

    def sgp4_dates(self, times_s: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """UTC Julian dates for SGP4 as ``(whole, fraction)``, each shape (n,)."""
        times = self.times_s if times_s is None else np.asarray(times_s, float)
        whole, fraction = utc_julian_date(self.epoch)
        return np.full(times.shape, whole), fraction + times / DAY_S

    def skyfield_times(self, times_s: np.ndarray | None = None):
        """A Skyfield ``Time`` array for ``times_s`` (default: all steps)."""
        times = self.times_s if times_s is None else np.asarray(times_s, float)
        ts = timescale()
        t0 = ts.from_datetime(self.epoch)
        return ts.tai_jd(np.full(times.shape, t0.whole), t0.tai_fraction + times / DAY_S)

    def earth_rotation_rad(self, times_s: np.ndarray | None = None,
                           scale: str = "ut1") -> np.ndarray:
        """GMST (IAU 1982, the angle between SGP4's TEME and Earth-fixed axes) [rad].

        Returns shape (n,).  ``scale = "ut1"`` uses UT1 from Skyfield's built-in
        tables, exactly as Skyfield's own TEME -> ITRS rotation does (no polar
        motion); ``"utc"`` feeds the UTC Julian date in place of UT1 (what
        tools that ignore UT1 - UTC compute).
        """
        from skyfield.sgp4lib import theta_GMST1982
        if scale not in EARTH_ROTATIONS:
            raise TopologyError(f"unknown time scale {scale!r} (known: "
                                f"{', '.join(EARTH_ROTATIONS)})", "earth_rotation")
        theta, _ = theta_GMST1982(*EARTH_ROTATIONS[scale](self, times_s))
        return np.asarray(theta, dtype=float)


def _ut1_dates(timebase: Timebase, times_s) -> tuple[np.ndarray, np.ndarray]:
    t = timebase.skyfield_times(times_s)
    return t.whole, t.ut1_fraction


#: Time scales the Earth rotation angle can be computed from: name ->
#: ``(timebase, times_s) -> (julian date whole, fraction)`` fed to GMST-1982.
EARTH_ROTATIONS = {"ut1": _ut1_dates, "utc": Timebase.sgp4_dates}

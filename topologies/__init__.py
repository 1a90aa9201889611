"""Orbital topology generator: constellations, laser-link policies, ground
stations and compute satellites -> a time-varying link schedule.

Front door of the package; everything public is re-exported here::

    import topologies
    config = topologies.ScheduleConfig(preset="starlink_shell1", duration_s=10)
    schedule = topologies.generate(config)
    schedule.links_at(0)

Units live in names (``_km``, ``_s``, ``_deg``, ``_bps``).  See README.md in
this directory for the Parquet file layout.
"""

from .cluster import INTRA_TOPOLOGIES, ORBIT_PRESETS, Cluster
from .compute import (COMPUTE_SELECTIONS, ComputeCluster, ComputeEveryK, ComputeIds,
                      ComputePerPlane, compute_from_dict)
from .config import ScheduleConfig
from .constants import C_KM_S, EARTH_RADIUS_KM, GENERATOR_VERSION, MU_KM3_S2
from .diff import LinkDiff, diff
from .errors import TopologyError
from .fleet import Fleet, kepler_period_s
from .formation import sso_inclination_deg
from .generate import generate
from .gsl import GSL_POLICIES
from .hypatia import read_hypatia, write_hypatia
from .isl import ISL_POLICIES, IslContext, LinkSet
from .schedule import Positions, Schedule
from .shells import PRESETS, Preset, Shell
from .tle import TleSet, load_tle

__version__ = GENERATOR_VERSION

__all__ = [
    "C_KM_S", "COMPUTE_SELECTIONS", "Cluster", "ComputeCluster", "ComputeEveryK", "ComputeIds",
    "ComputePerPlane", "EARTH_RADIUS_KM", "Fleet", "GENERATOR_VERSION", "GSL_POLICIES",
    "INTRA_TOPOLOGIES", "ISL_POLICIES", "IslContext", "LinkDiff", "LinkSet", "MU_KM3_S2", "ORBIT_PRESETS", "PRESETS", "Positions",
    "Preset", "Schedule", "ScheduleConfig", "Shell", "TleSet", "TopologyError",
    "compute_from_dict", "diff", "generate", "kepler_period_s", "load_tle", "read_hypatia",
    "sso_inclination_deg", "write_hypatia",
]

"""Which satellites host GPUs ("compute satellites"): selections and their registry.

Each selection is a frozen dataclass with ``select(fleet) -> numpy.ndarray``
returning sorted satellite indices (= node ids), and a plain-dict form::

    {"ids": [0, 5, 9]}                    explicit satellite node ids
    {"every_k": 10}  or {"every_k": {"k": 10, "offset": 3}}
                                          node ids offset, offset+k, ...
    {"per_plane": 2}                      n satellites per plane, evenly spaced slots
    {"cluster": {"plane": 3, "slot": 5, "size": 9, "shell": 0}}
                                          the `size` satellites nearest to
                                          (plane, slot) on the shell's grid
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._checks import as_int, as_mapping, reject_unknown
from .errors import Collector, TopologyError
from .fleet import Fleet


def _ints(values: Mapping[str, Any], minimums: Mapping[str, int]) -> dict[str, int]:
    """The integer fields of ``values`` checked against ``minimums``, every problem reported."""
    c = Collector()
    out = {name: c.check(as_int, values[name], name, min_value=low)
           for name, low in minimums.items() if name in values}
    c.raise_if_any()
    return out


def _set_ints(selection: Any, minimums: Mapping[str, int]) -> None:
    """Check and normalise a frozen selection's integer fields in place."""
    values = _ints({name: getattr(selection, name) for name in minimums}, minimums)
    for name, value in values.items():
        object.__setattr__(selection, name, value)


@dataclass(frozen=True)
class ComputeIds:
    """Explicit satellite node ids."""

    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.ids, (str, bytes)) or not hasattr(self.ids, "__iter__"):
            raise TopologyError("must be a list of satellite node ids", "ids")
        c = Collector()
        ids = tuple(c.check(as_int, v, f"ids[{i}]", min_value=0) for i, v in enumerate(self.ids))
        c.raise_if_any()
        if len(set(ids)) != len(ids):
            raise TopologyError("duplicate satellite id", "ids")
        object.__setattr__(self, "ids", tuple(sorted(ids)))

    def select(self, fleet: Fleet) -> np.ndarray:
        ids = np.array(self.ids, dtype=np.int64)
        if ids.size and ids.max() >= fleet.n_sats:
            raise TopologyError(f"satellite id {int(ids.max())} out of range "
                                f"0..{fleet.n_sats - 1}", "ids")
        return ids

    def to_dict(self) -> dict:
        return {"ids": list(self.ids)}


@dataclass(frozen=True)
class ComputeEveryK:
    """Every k-th satellite by node id, starting at ``offset``."""

    k: int
    offset: int = 0
    MINIMUMS: ClassVar[dict[str, int]] = {"k": 1, "offset": 0}

    def __post_init__(self) -> None:
        _set_ints(self, self.MINIMUMS)

    def select(self, fleet: Fleet) -> np.ndarray:
        return np.arange(self.offset, fleet.n_sats, self.k, dtype=np.int64)

    def to_dict(self) -> dict:
        return {"every_k": {"k": self.k, "offset": self.offset}}


@dataclass(frozen=True)
class ComputePerPlane:
    """``n`` satellites per plane, at evenly spaced slots (slot 0 first)."""

    n: int
    MINIMUMS: ClassVar[dict[str, int]] = {"n": 1}

    def __post_init__(self) -> None:
        _set_ints(self, self.MINIMUMS)

    def select(self, fleet: Fleet) -> np.ndarray:
        placed = fleet.plane >= 0
        key = fleet.shell * 1_000_000 + fleet.plane
        chosen = []
        for group in np.unique(key[placed]):
            members = np.flatnonzero(placed & (key == group))
            members = members[np.argsort(fleet.slot[members], kind="stable")]
            count = min(self.n, members.size)
            picks = np.floor(np.arange(count) * members.size / count).astype(np.int64)
            chosen.append(members[picks])
        return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)

    def to_dict(self) -> dict:
        return {"per_plane": self.n}


@dataclass(frozen=True)
class ComputeCluster:
    """The ``size`` satellites closest to (plane, slot) on one shell's grid.

    Grid distance is ``|d_plane| + |d_slot|`` with both differences taken
    around the ring (planes wrap only for delta shells); ties go to the lower
    (plane, slot).
    """

    plane: int
    slot: int
    size: int
    shell: int = 0
    MINIMUMS: ClassVar[dict[str, int]] = {"plane": 0, "slot": 0, "size": 1, "shell": 0}

    def __post_init__(self) -> None:
        _set_ints(self, self.MINIMUMS)

    def select(self, fleet: Fleet) -> np.ndarray:
        members = np.flatnonzero((fleet.shell == self.shell) & (fleet.plane >= 0))
        if members.size == 0:
            raise TopologyError(f"no placed satellites in shell {self.shell}", "shell")
        planes = fleet.plane[members]
        slots = fleet.slot[members]
        n_planes = int(planes.max()) + 1
        n_slots = int(slots.max()) + 1
        if self.plane >= n_planes:
            raise TopologyError(f"must be < {n_planes}, got {self.plane}", "plane")
        if self.slot >= n_slots:
            raise TopologyError(f"must be < {n_slots}, got {self.slot}", "slot")
        if self.size > members.size:
            raise TopologyError(f"must be <= {members.size} (satellites in shell), "
                                f"got {self.size}", "size")
        d_plane = np.abs(planes - self.plane)
        if fleet.shell_wraps[self.shell]:
            d_plane = np.minimum(d_plane, n_planes - d_plane)
        d_slot = np.abs(slots - self.slot)
        d_slot = np.minimum(d_slot, n_slots - d_slot)
        order = np.lexsort((slots, planes, d_plane + d_slot))
        return np.sort(members[order[:self.size]])

    def to_dict(self) -> dict:
        return {"cluster": {"plane": self.plane, "slot": self.slot, "size": self.size,
                            "shell": self.shell}}


#: Compute-satellite selections by name (the key of their dict form).
COMPUTE_SELECTIONS: dict[str, type] = {
    "ids": ComputeIds,
    "every_k": ComputeEveryK,
    "per_plane": ComputePerPlane,
    "cluster": ComputeCluster,
}

ComputeSelection = ComputeIds | ComputeEveryK | ComputePerPlane | ComputeCluster


def compute_from_dict(data: Any, field: str = "compute"):
    """Build a selection from its dict form (see module docstring)."""
    if data is None:
        return None
    if isinstance(data, tuple(COMPUTE_SELECTIONS.values())):
        return data
    data = as_mapping(data, field)
    if len(data) != 1:
        raise TopologyError(f"give exactly one of {', '.join(COMPUTE_SELECTIONS)}", field)
    (method, value), = data.items()
    if method not in COMPUTE_SELECTIONS:
        raise TopologyError(f"unknown selection (known: {', '.join(COMPUTE_SELECTIONS)})",
                            f"{field}.{method}")
    cls = COMPUTE_SELECTIONS[method]
    fields = dataclasses.fields(cls)
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    if not isinstance(value, Mapping) and len(required) > 1:
        optional = [f.name for f in fields if f.name not in required]
        raise TopologyError(f"must be a table with keys {', '.join(required)}"
                            + (f" (and optionally {', '.join(optional)})" if optional else ""),
                            f"{field}.{method}")
    try:
        if isinstance(value, Mapping):
            c = Collector()
            c.check(reject_unknown, value, [f.name for f in fields], None)
            for key in required:
                if key not in value:
                    c.add("missing required key", key)
            if not c.ok:          # still check the values that are there
                c.check(_ints, value, getattr(cls, "MINIMUMS", {}))
            c.raise_if_any()
            return cls(**value)
        return cls(value)
    except TopologyError as err:
        if not isinstance(value, Mapping) and fields[0].name == method:    # {ids = [...]}: no ids.ids
            err = TopologyError(problems=[(f[len(method):] if f and f.startswith(method) else f, m)
                                          for f, m in err.problems])
        raise err.with_prefix(f"{field}.{method}") from None
    except TypeError as err:
        raise TopologyError(f"bad arguments: {err}", f"{field}.{method}") from None


def compute_from_text(text: str):
    """Parse the command-line form: ``ids:1,5,9``, ``every_k:10``, ``per_plane:2``,
    ``cluster:PLANE:SLOT:SIZE[:SHELL]``."""
    method, _, rest = text.partition(":")
    try:
        if method == "ids":
            return ComputeIds(tuple(int(x) for x in rest.split(",") if x.strip()))
        if method == "every_k":
            return ComputeEveryK(*(int(x) for x in rest.split(":")))
        if method == "per_plane":
            return ComputePerPlane(int(rest))
        if method == "cluster":
            return ComputeCluster(*(int(x) for x in rest.split(":")))
    except (ValueError, TypeError):
        pass
    except TopologyError as err:
        raise err.with_prefix("--compute") from None
    raise TopologyError(f"cannot parse {text!r}; use ids:1,5,9 | every_k:K | per_plane:N | "
                        "cluster:PLANE:SLOT:SIZE[:SHELL]", "--compute")

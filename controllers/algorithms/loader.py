"""Routing algorithms from a user's file: a module that defines ``ALGORITHM`` exactly as the
built-in ones do (see :mod:`controllers.algorithms`), loaded by path, without editing the
package. ``resolve_algorithm`` takes a registered name or a path ending in ``.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from ..errors import ParameterError
from .base import Algorithm

_LOADED: dict[Path, Algorithm] = {}


def is_algorithm_path(ref: str) -> bool:
    return ref.endswith(".py")


def load_algorithm_file(path: str | Path) -> Algorithm:
    """The ``ALGORITHM`` of the module at ``path`` (loaded once per process).

    Raises
    ------
    ParameterError
        One line naming the file and what is wrong: missing, not importable (with the
        exception it raised), no ``ALGORITHM``, or not an :class:`Algorithm`.
    """
    path = Path(path).expanduser().resolve()
    if path in _LOADED:
        return _LOADED[path]
    if not path.is_file():
        raise ParameterError(f"{path}: no such algorithm file")
    name = "lmtb_user_algorithm_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParameterError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - a user's module may raise anything: report it in one line
        del sys.modules[name]
        raise ParameterError(f"{path}: importing it failed: {type(err).__name__}: {err}") from None
    algorithm = getattr(module, "ALGORITHM", None)
    if not isinstance(algorithm, Algorithm):
        raise ParameterError(f"{path}: defines no ALGORITHM = Algorithm(...) "
                             f"(found {type(algorithm).__name__ if algorithm is not None else 'nothing'})")
    _LOADED[path] = algorithm
    return algorithm

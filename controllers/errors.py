"""Exceptions raised by the pure routing core.

Every error the core raises on bad input is a :class:`RoutingError`, itself a
:class:`ValueError`, so the os-ken adapter can catch one type and stop loudly.
The subclasses say which part of the input was wrong.
"""

from __future__ import annotations

__all__ = ["RoutingError", "ParameterError", "SnapshotError", "RuleError"]


class RoutingError(ValueError):
    """Base class: the routing core was given input it cannot route on."""


class ParameterError(RoutingError):
    """An algorithm name or parameter is unknown or has a bad value.

    The message names the algorithm and the parameter.
    """


class SnapshotError(RoutingError):
    """A link-state snapshot or link record is malformed."""


class RuleError(RoutingError):
    """Routes cannot be translated into rules (missing port, bad address...)."""

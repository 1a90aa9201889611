"""The one exception type of the package, and the collector that fills it.

Every user-facing failure (bad configuration, bad TLE file, bad schedule file,
violated physical invariant) is a :class:`TopologyError`, a subclass of
``ValueError``.  It carries its problems as data: ``problems`` is a tuple of
``(field, problem)`` pairs, ``field`` the dotted path of the offending input
(``"shell[0].altitude_km"``) or None, ``problem`` what is wrong.  ``str(err)``
is one line per problem, ``"shell[0].altitude_km: must be > 0, got -5"``.

Configuration classes validate with a :class:`Collector`, so one error reports
every problem of the input at once instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: One problem: ``(field path or None, what is wrong)``.
Problem = tuple[str | None, str]


def join_field(prefix: str | None, field: str | None) -> str | None:
    """``prefix`` + ``field`` as one path: ``a.b``, ``a[0]`` (either may be None)."""
    if not prefix:
        return field
    if not field:
        return prefix
    return f"{prefix}{'' if field.startswith('[') else '.'}{field}"


class TopologyError(ValueError):
    """A problem (or several) with topology inputs, outputs or invariants.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, what to do about it.
    field : str, optional
        Dotted path of the offending input field (``"shell[0].altitude_km"``).
    problems : iterable of (field, message), optional
        Several problems at once (then ``message`` and ``field`` are ignored).

    Attributes
    ----------
    problems : tuple of (str or None, str)
        Every problem, in the order found.
    field, problem
        The first problem's field path and message.
    """

    def __init__(self, message: str = "", field: str | None = None, *,
                 problems: Iterable[Problem] | None = None):
        self.problems: tuple[Problem, ...] = tuple(problems) if problems is not None \
            else ((field, message),)
        if not self.problems:
            raise ValueError("a TopologyError needs at least one problem")
        self.field, self.problem = self.problems[0]
        super().__init__("\n".join(f"{f}: {m}" if f else m for f, m in self.problems))

    def with_prefix(self, prefix: str) -> "TopologyError":
        """The same problems with ``prefix`` prepended to every field path."""
        return TopologyError(problems=[(join_field(prefix, f), m) for f, m in self.problems])


#: Returned by :meth:`Collector.check` when the check failed (its problems are kept).
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID",
                                     "__bool__": lambda self: False})()


class Collector:
    """Gathers problems instead of raising at the first one.

    ``value = c.check(as_int, v, "planes", min_value=1)`` returns the checked
    value, or :data:`INVALID` after recording the :class:`TopologyError`'s
    problems; :meth:`raise_if_any` raises them all together.

    Parameters
    ----------
    prefix : str, optional
        Prepended to every recorded field path.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix
        self.problems: list[Problem] = []

    def add(self, message: str, field: str | None = None) -> None:
        self.problems.append((join_field(self.prefix, field), message))

    def extend(self, err: TopologyError, prefix: str | None = None) -> None:
        """Record every problem of ``err`` (field paths under ``prefix``)."""
        for field, message in err.problems:
            self.add(message, join_field(prefix, field))

    def check(self, fn: Callable[..., Any], *args: Any, prefix: str | None = None,
              **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or INVALID with its TopologyError recorded."""
        try:
            return fn(*args, **kwargs)
        except TopologyError as err:
            self.extend(err, prefix)
            return INVALID

    @property
    def ok(self) -> bool:
        """True while no problem was recorded."""
        return not self.problems

    def raise_if_any(self) -> None:
        if self.problems:
            raise TopologyError(problems=self.problems)

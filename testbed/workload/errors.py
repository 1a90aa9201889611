"""The one exception type of the workload package."""

from __future__ import annotations

from collections.abc import Iterable


class WorkloadError(ValueError):
    """A workload, trace, plan or generator parameter is invalid.

    The message always names what is wrong and where: the parameter, or the
    file (and line or node) that holds the bad value.

    Parameters
    ----------
    message : str
        The problem, for errors that are not about one parameter (files, traces).
    source : str, optional
        What was being built, e.g. the generator's name (``"ddp"``).
    problems : iterable of (parameter, problem), optional
        Every bad parameter at once: ``("iterations", "must be an integer >= 1, got 0")``;
        parameter None for a problem of the whole call.

    Attributes
    ----------
    source : str or None
    problems : tuple of (str or None, str)
        As data, for callers that map parameters onto their own key paths.
    """

    def __init__(self, message: str = "", *, source: str | None = None,
                 problems: Iterable[tuple[str | None, str]] | None = None):
        self.source = source
        self.problems = tuple(problems) if problems is not None else ((None, message),)
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + (f"{name}: {problem}" if name else problem)
                                   for name, problem in self.problems))

"""The one exception type of the package.

Every user-facing failure (bad configuration, bad TLE file, bad schedule file,
violated physical invariant) is a :class:`TopologyError`, a subclass of
``ValueError``.  When the problem concerns one input field, the message starts
with that field's path, e.g. ``"shell[0].altitude_km: must be > 0, got -5"``.
"""

from __future__ import annotations


class TopologyError(ValueError):
    """A problem with topology inputs, outputs or invariants.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, what to do about it.
    field : str, optional
        Dotted path of the offending input field (``"shell[0].altitude_km"``).
        When given, the message is prefixed with it.
    """

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        self.problem = message
        super().__init__(f"{field}: {message}" if field else message)

    def with_prefix(self, prefix: str) -> "TopologyError":
        """Return the same error with ``prefix`` prepended to its field path."""
        if self.field is None:
            return TopologyError(self.problem, prefix)
        joiner = "" if self.field.startswith("[") else "."
        return TopologyError(self.problem, f"{prefix}{joiner}{self.field}")

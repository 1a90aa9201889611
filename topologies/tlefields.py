"""The fixed columns of a TLE's two element lines and the format of each field.

A TLE field is read by column, so a stray letter in a number (``abc.3944`` as the
inclination) does not shift anything else; parsers differ in what they then do
(sgp4 may accept the line and fail only when propagating, and the satellite
would look "decayed").  :func:`check_fields` rejects such a line, naming
``file:line:column`` (1-based, the first character that breaks the field's
format) and the field.

Columns follow the NORAD two-line element set format (CelesTrak, "FAQs: Two-Line
Element Set Format"); the satellite number may be an Alpha-5 number (a letter
in column 3).
"""

from __future__ import annotations

import re

from .errors import TopologyError

_FIXED = r" *[+-]?\d*\.\d+"            # 53.0544, " .00001234", "-.00000123"
_EXPONENT = r" *[+-]?\d+[+-]\d"        # " 12345-3" = 0.12345e-3, implied decimal point
_WHOLE = r" *\d*"                      # right-aligned, blanks allowed
_SATNUM = r"[0-9A-Z ][0-9 ]{3}\d"

#: Line number -> ((first column, last column, name, pattern, example), ...), 1-based columns.
FIELDS: dict[str, tuple[tuple[int, int, str, str, str], ...]] = {
    "1": ((3, 7, "satellite number", _SATNUM, "44714"),
          (19, 20, "epoch year", r"\d\d", "22"),
          (21, 32, "epoch day", r" *\d{1,3}\.\d+", "257.12345678"),
          (34, 43, "first derivative of mean motion", _FIXED, " .00001234"),
          (45, 52, "second derivative of mean motion", _EXPONENT, " 00000-0"),
          (54, 61, "BSTAR drag term", _EXPONENT, " 12345-3"),
          (63, 63, "ephemeris type", r"[0-9 ]", "0"),
          (65, 68, "element set number", _WHOLE, " 999")),
    "2": ((3, 7, "satellite number", _SATNUM, "44714"),
          (9, 16, "inclination", _FIXED, " 53.0544"),
          (18, 25, "right ascension of the ascending node", _FIXED, "123.4567"),
          (27, 33, "eccentricity", r" *\d+", "0001234"),
          (35, 42, "argument of perigee", _FIXED, " 89.1234"),
          (44, 51, "mean anomaly", _FIXED, "270.9876"),
          (53, 63, "mean motion", r" *\d*\.\d+", "15.06412345"),
          (64, 68, "revolution number", _WHOLE, "12345")),
}
_COMPILED = {number: tuple((first, last, name, re.compile(pattern), example)
                           for first, last, name, pattern, example in fields)
             for number, fields in FIELDS.items()}
_NUMBER_CHARS = set("0123456789 .+-")


def check_fields(where: str, line: str, number: str) -> None:
    """Raise TopologyError ``where:column: <field> (columns a-b) ...`` for a malformed field.

    Parameters
    ----------
    where : str
        ``file:line`` of ``line``.
    line : str
        A 69-character element line.
    number : str
        ``"1"`` or ``"2"``.
    """
    for first, last, name, pattern, example in _COMPILED[number]:
        text = line[first - 1:last]
        if pattern.fullmatch(text):
            continue
        allowed = _NUMBER_CHARS | (set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if first == 3 else set())
        column = next((first + i for i, ch in enumerate(text) if ch not in allowed), first)
        raise TopologyError(f"{where}:{column}: TLE line {number} {name} (columns {first}-{last}) "
                            f"is not a number of the form {example.strip()!r}: got {text!r}")


__all__ = ["FIELDS", "check_fields"]

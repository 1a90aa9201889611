"""One look for every figure: colours per algorithm, paper-sized fonts, atomic saving.

Colours come from the Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008),
distinguishable with the common colour-vision deficiencies. Each algorithm keeps its
colour, line style and marker in every figure: they are keyed by label in the manifest's
order. Black is kept for references (the geometric RTT); beyond seven algorithms the
colours repeat with another line style.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testbed.system.files import atomic_path

#: Okabe-Ito without black (reserved for reference lines) and yellow last (weak on white).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REFERENCE_COLOUR = "black"
#: Sequential colour map for utilisation (perceptually uniform, colour-vision-deficiency safe):
#: light = idle, dark = busy, in every figure (see :func:`load_colours`).
LOAD_CMAP = "cividis_r"
#: Cells / links with no measurement.
NO_DATA_COLOUR = "0.85"
FIGURE_FORMATS = ("png", "pdf")
PNG_DPI = 200

PAPER_RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.3,
    "pdf.fonttype": 42,       # TrueType in PDFs, so journals' checkers accept them
    "savefig.bbox": "tight",
}


@dataclass(frozen=True)
class AlgoStyle:
    colour: str
    linestyle: str
    marker: str

    def line(self) -> dict:
        return {"color": self.colour, "linestyle": self.linestyle}


def palette(labels: list[str]) -> dict[str, AlgoStyle]:
    """Style per algorithm label, by position in ``labels`` (the manifest's order)."""
    n = len(OKABE_ITO)
    return {label: AlgoStyle(OKABE_ITO[i % n], LINESTYLES[(i // n) % len(LINESTYLES)],
                             MARKERS[i % len(MARKERS)])
            for i, label in enumerate(labels)}


def load_colours(run) -> tuple:
    """(colour map, Normalize) for link utilisation, the same in every figure: from 0 to
    the largest utilisation sample of the run (any algorithm, trial, link); (cmap, None)
    when no link carried any load."""
    import matplotlib
    import numpy as np
    from matplotlib.colors import ListedColormap, Normalize
    cmap = ListedColormap(matplotlib.colormaps[LOAD_CMAP](np.linspace(0.08, 1.0, 256)),
                          name="load").with_extremes(bad=NO_DATA_COLOUR)
    tables = run.available("link_util")
    top = max((float(np.nanmax(t["utilisation"].to_numpy(float))) for t in tables.values()), default=0.0)
    return cmap, (Normalize(0.0, top) if top > 0 else None)


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@contextmanager
def paper_style():
    plt = pyplot()
    with plt.rc_context(PAPER_RC):
        yield plt


def atomic_savefig(fig, path: Path) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix) via a temporary file and a rename."""
    with atomic_path(path) as temp:
        fig.savefig(temp, format=path.suffix.lstrip("."), dpi=PNG_DPI)
    return path


def legend_handles(styles: dict[str, AlgoStyle], labels: list[str], marker: bool = False):
    """Line handles for a figure-level legend of ``labels``."""
    from matplotlib.lines import Line2D
    return [Line2D([], [], marker=styles[l].marker if marker else None, markersize=4, label=l,
                   **styles[l].line()) for l in labels]

"""One figure style for the whole book, kept apart from the maths.

Every page calls :func:`use_book_style` once before drawing, so figures share size, fonts and
colours and stay legible at page width.
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

#: Colour cycle shared by all pages (colour-blind safe, Okabe–Ito).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set matplotlib's rcParams to the book's style (size, fonts, grid, colours)."""
    mpl.rcParams.update({
        "figure.figsize": (7.0, 4.0),
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "figure.constrained_layout.use": True,
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=PALETTE),
    })

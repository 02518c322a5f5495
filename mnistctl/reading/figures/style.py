"""The one look of every figure, and the one way figures are saved."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from mnistctl.errors import OutputAppeared
from mnistctl.fsutil import Taken, atomic_path

STYLE = {
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.dpi": 110,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "figure.titlesize": 15,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "image.interpolation": "nearest",
}
TRAIN, VAL, TEST, ERROR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"
WEIGHTS_CMAP, ACTIVATION_CMAP, ATTRIBUTION_CMAP, DIGIT_CMAP = "RdBu_r", "RdBu_r", "RdBu_r", "gray_r"

Builder = TypeVar("Builder", bound=Callable[..., Figure])


def styled(builder: Builder) -> Builder:
    """A figure builder that draws in the house style, whoever calls it."""

    @functools.wraps(builder)
    def build(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            return builder(*args, **kwargs)

    return build  # type: ignore[return-value]


def exact_decimals(values: Sequence[float], most: int = 6) -> int:
    """The fewest decimals that write every value exactly (0.25 needs two, 0.5 one)."""
    for decimals in range(most + 1):
        if all(abs(round(v, decimals) - v) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return decimals
    return most


class ExactPercent(Formatter):
    """Percent tick labels with as many decimals as the ticks need, the same for every tick: 0.25 is "0.25%", never "0.2%".
    ``xmax`` is the value written 100%."""

    def __init__(self, xmax: float = 100.0):
        self.xmax = xmax
        self.decimals: int | None = None

    def set_locs(self, locs) -> None:
        super().set_locs(locs)
        self.decimals = exact_decimals([100 * loc / self.xmax for loc in locs])

    def __call__(self, x, pos=None) -> str:
        value = 100 * x / self.xmax + 0.0  # never "-0%"
        decimals = self.decimals if self.decimals is not None else exact_decimals([value])
        return f"{value:.{decimals}f}%"


def bare(ax) -> None:
    """An image tile: no ticks, a thin light frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#c8c8c8")
        spine.set_linewidth(0.8)


def save(figure: Figure, path: str | Path, replace: bool = True) -> Path:
    """Write a PNG atomically: a reader never sees half a file. With ``replace=False`` (a file the user
    named) a file that appeared there meanwhile is kept, and the figure is refused in one line."""
    path = Path(path)
    try:
        with atomic_path(path, replace=replace) as tmp, matplotlib.rc_context(STYLE):
            figure.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.15)
    except Taken:
        raise OutputAppeared(path) from None
    return path

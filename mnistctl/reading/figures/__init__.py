"""Pure figure builders: data in, a matplotlib Figure out, in one style; ``save`` writes it."""

from mnistctl.reading.figures.style import save, styled

__all__ = ["save", "styled"]

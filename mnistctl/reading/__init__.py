"""The commands that read a run directory: evaluate, predict, compare, export and the figures."""

"""The CPU cores this process may run on."""

from __future__ import annotations

import os

KNOWS_AFFINITY = hasattr(os, "sched_getaffinity")


def usable_cores() -> int:
    """The cores in this process's affinity mask (a container's or taskset's limit), else all the machine's."""
    return len(os.sched_getaffinity(0)) if KNOWS_AFFINITY else os.cpu_count() or 1

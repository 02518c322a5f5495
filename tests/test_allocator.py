"""Freed memory kept for reuse: the same allocations stop faulting pages in again."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# Three 8 MB arrays alive at once, then freed: glibc's defaults give the freed top of the heap back.
PROGRAM = """
import resource, sys
import numpy as np
from mnistctl.allocator import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "keep" else False

def step():
    return sum(float(a.sum()) for a in [np.ones(2_000_000, np.float32) for _ in range(3)])

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def run(program: str, *args: str, **env: str) -> list[str]:
    """The program's printed words, run without the caller's malloc settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, check=True, env=clean | env).stdout.split()


def faults(mode: str, **env: str) -> tuple[str, int]:
    out = run(PROGRAM, mode, **env)
    return out[0], int(out[1])


def test_freed_memory_is_reused_without_faulting_it_in_again():
    kept, with_setting = faults("keep")
    _, without = faults("default")
    assert kept == "True"
    assert without > 5_000  # the 24 MB are faulted in again on every step
    assert with_setting < without / 20


def test_a_malloc_setting_in_the_environment_wins():
    kept, found = faults("keep", MALLOC_TRIM_THRESHOLD_="0")
    assert kept == "False"
    assert found > 5_000


# Every other 4 MB array freed: holes in the heap that the kept setting holds on to.
FRAGMENTED = """
import numpy as np
from mnistctl.allocator import keep_freed_memory, release_freed_memory

def anon_kb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))

assert keep_freed_memory()
arrays = [np.ones(1_000_000, np.float32) for _ in range(40)]
del arrays[::2]
before = anon_kb()
release_freed_memory()
print(before - anon_kb(), sum(float(a.sum()) for a in arrays))
"""


def test_free_pages_kept_are_given_back_on_request():
    out = run(FRAGMENTED)
    assert int(out[0]) > 60_000  # most of the 80 MB of holes
    assert float(out[1]) == 20 * 1_000_000  # the arrays still alive are intact

"""Fast start: help and listing never import the heavy libraries."""

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "torchvision", "textual", "matplotlib", "sklearn"]
PROBE = """
import json, sys
from mnistctl.cli import main
sys.argv = ["mnistctl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("HEAVY=" + json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "archs"], ["list", "plugins"], ["list", "schedulers", "--json"], ["list", "--json"]])
def test_no_heavy_imports(args):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    assert lines == ["HEAVY=[]"], f"`mnistctl {' '.join(args)}` imported {lines}"
    assert len(result.stdout.splitlines()) > 1, "the command printed nothing"


@pytest.mark.parametrize("args, other", [(["predict", "--help"], "mnistctl.cli.train"), (["train", "--help"], "mnistctl.cli.predict")])
def test_one_command_imports_no_other_commands_module(args, other):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=[other, "pluggy"]), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Usage" in result.stdout, result.stderr
    assert "HEAVY=[]" in result.stdout.splitlines(), result.stdout[-300:]

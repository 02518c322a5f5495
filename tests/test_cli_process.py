"""The ``mnistctl`` process at its edges: Ctrl-C while it starts, an output whose reader has gone."""

import subprocess
import sys

from test_cli import mnistctl_script


def test_ctrl_c_while_the_console_script_imports_the_cli_exits_130_without_a_traceback(tmp_path):
    stop_at_import = (
        "import runpy, sys\n"
        "class Stop:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mnistctl.cli':\n"
        "            raise KeyboardInterrupt  # Ctrl-C, arriving while typer and rich load\n"
        "sys.meta_path.insert(0, Stop())\n"
        f"sys.argv = [{mnistctl_script()!r}, 'list']\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", stop_at_import], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 130 and result.stderr == "interrupted\n", result.stderr

"""The ``mnistctl`` process at its edges: Ctrl-C while it starts, an output whose reader has gone."""

import os
import signal
import subprocess
import sys

import pytest

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


def run_into_a_closed_pipe(args: list[str], closed: int = 1) -> subprocess.CompletedProcess:
    """Run the script with its standard output (1) or error (2) a pipe whose reader has already gone, as with ``| head -1``."""
    reader, writer = os.pipe()
    os.close(reader)
    streams = {"stdout": writer, "stderr": subprocess.PIPE} if closed == 1 else {"stdout": subprocess.DEVNULL, "stderr": writer}
    try:
        result = subprocess.run([mnistctl_script(), *args], **streams, timeout=120, env={**os.environ, "COLUMNS": "200"})
    finally:
        os.close(writer)
    return result


@pytest.mark.parametrize("args", [
    ["--help"],  # rich, while the command runs
    ["--version"],  # print: the flush as the command ends
    [],  # the help, outside the command
    ["list", "archs", "--json"],
    ["train", "--help"],
])
def test_an_output_whose_reader_has_gone_ends_the_command_by_sigpipe_silently(args):
    result = run_into_a_closed_pipe(args)
    assert result.returncode == -signal.SIGPIPE and result.stderr == b"", result.stderr.decode()


def test_an_error_whose_reader_has_gone_ends_the_command_by_sigpipe_silently():
    assert run_into_a_closed_pipe(["list", "archs", "lenett"], closed=2).returncode == -signal.SIGPIPE


@pytest.mark.parametrize("form", ["--jsonl", "--json"])
def test_streamed_predictions_whose_reader_has_gone_end_by_sigpipe_silently(form, short_run, tmp_path):
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    result = run_into_a_closed_pipe(["predict", str(tmp_path / "blank.png"), "--run", str(short_run.path), "--raw", form])
    assert result.returncode == -signal.SIGPIPE and result.stderr == b"", result.stderr.decode()

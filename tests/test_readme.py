"""The README cannot drift from the command: every mnistctl example names a real sub-command and real options."""

import re
import shlex
from pathlib import Path

import pytest

from mnistctl.cli import command

README = Path(__file__).parents[1] / "README.md"


def examples() -> list[str]:
    """Each `mnistctl ...` line of the README's shell blocks, comments and continuations joined."""
    lines = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip().removeprefix("$ ")
            for part in re.split(r"\s*(?:&&|\||;)\s*", line):
                if part.startswith("mnistctl "):
                    lines.append(part)
    return lines


def resolve(words: list[str]):
    """The sub-command an example runs, and the words after it."""
    cmd = command()
    while words and hasattr(cmd, "commands") and words[0] in cmd.commands:
        cmd, words = cmd.commands[words[0]], words[1:]
    return cmd, words


def test_the_readme_has_examples():
    assert len(examples()) >= 20


@pytest.mark.parametrize("example", examples())
def test_example_uses_existing_commands_and_options(example):
    cmd, rest = resolve(shlex.split(example)[1:])
    assert not hasattr(cmd, "commands") or not rest or rest[0].startswith("-"), f"{example}: no such sub-command"
    known = {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
    used = {word.split("=")[0] for word in rest if word.startswith("-") and word != "-"}
    assert used <= known, f"{example}: unknown option(s) {sorted(used - known)}"


def test_every_code_fence_is_a_line_of_its_own_so_the_prose_after_it_renders():
    fences = [(n, line) for n, line in enumerate(README.read_text().splitlines(), 1) if line.lstrip().startswith("```")]
    assert all(re.fullmatch(r"\s*```[a-z]*", line) for _, line in fences), [f for f in fences if not re.fullmatch(r"\s*```[a-z]*", f[1])]
    assert len(fences) % 2 == 0


def test_the_readme_gives_the_metrics_line_limit_the_reader_keeps():
    from mnistctl.runs.reader import MAX_LINE

    assert f"a line of `metrics.jsonl` at most {MAX_LINE // 2**20} MB" in README.read_text()


def test_the_commands_section_says_every_command_takes_h_as_help():
    from typer.testing import CliRunner

    from mnistctl.cli import app

    section = README.read_text().split("## Commands\n", 1)[1].split("\n## ", 1)[0]
    assert "`--help`, or `-h`" in section
    for name in re.findall(r"^\| `mnistctl (\w+)` \|", section, flags=re.M):
        result = CliRunner().invoke(app, [name, "-h"], env={"COLUMNS": "100"})
        assert result.exit_code == 0 and f"mnistctl {name} [OPTIONS]" in result.output, name

"""``mnistctl list``: registered architectures, schedulers, optimizers and plugins."""

from __future__ import annotations

import typer

from mnistctl.console import dumps, out

app = typer.Typer(help="List registered architectures, schedulers, optimizers and plugins: all four, or the kind named.")

PATTERN = typer.Argument("*", help="Filter names with a wildcard, e.g. 'simple*'.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


KINDS = ("archs", "schedulers", "optimizers")


def _spec_rows(kind: str, pattern: str = "*") -> list[dict]:
    from mnistctl.errors import NotFoundError
    from mnistctl.plugins import registry
    from mnistctl.registry import suggest

    specs = registry(kind).list(pattern)
    if not specs:
        raise NotFoundError(f"no {registry(kind).kind} matches '{pattern}'", suggest(pattern, registry(kind).names()))
    return [
        {
            "name": s.name,
            "description": s.description,
            **({"params": s.params, "precisions": list(s.precisions)} if kind == "archs" else {}),
            "defaults": {k: list(v) if isinstance(v, tuple) else v for k, v in s.defaults.items()},
            "choices": choices(s),
            "source": s.source,
        }
        for s in specs
    ]


def choices(spec) -> dict[str, list]:
    """The values each ``Literal`` option takes, none last for an ``Optional`` one: ``{"pool": ["max", "avg"]}``."""
    return {key: [*takes.choices, *([None] if takes.optional else [])] for key, takes in spec.allowed.items() if takes.choices}


def _plugin_rows() -> list[dict]:
    from mnistctl.plugins import plugin_infos

    return [{**i.__dict__, "hooks": list(i.hooks)} for i in plugin_infos()]


READABLE = 15  # the narrowest a description (or a plugin's error) wraps to before a column is left out for it


def _show_specs(kind: str, pattern: str, as_json: bool) -> None:
    from mnistctl.plugins import registry
    from mnistctl.registry import PRECISIONS, format_value

    rows = _spec_rows(kind, pattern)
    if as_json:
        print(dumps(rows, indent=2, default=str))  # a class or an enum default as the table shows it
        return
    columns = ["name", "description", *(["params"] if kind == "archs" else []), "defaults", "source"]
    for row in rows:
        if len(row.get("precisions", PRECISIONS)) < len(PRECISIONS):
            row["description"] = f"{row['description']} ({' and '.join(row['precisions'])} only)".lstrip()
        row["options"] = [(f"{k}={format_value(v)}", _choices_text(row["choices"].get(k))) for k, v in row["defaults"].items()] or [("-", "")]

    def table(shown: list[str], commas: bool, measuring: bool = False):
        from rich.markup import escape
        from rich.table import Table

        from rich.cells import cell_len

        from mnistctl.console import least_width

        narrowest = max(max(least_width(option, ","), min(cell_len(takes), CHOICES_WIDTH), least_width(takes, "|")) for row in rows for option, takes in row["options"])
        table = Table(title=f"{registry(kind).kind.capitalize()}s", title_justify="left")
        for column in shown:
            table.add_column(column, justify="right" if column == "params" else "left", no_wrap=column != "description",
                             style={"name": "bold cyan", "defaults": "dim", "source": "green"}.get(column),
                             max_width=READABLE if measuring and column == "description" else None)
        for row in rows:
            # one option a line, a long list broken after its commas, its choices on the next line: an option's name is never cut
            options = [line for option, takes in row["options"] for line in _option_lines(option, takes, narrowest if commas else None)]
            cells = {"name": row["name"], "description": row["description"], "params": f"{row['params']:,}" if row.get("params") else "?",
                     "defaults": "\n".join(options), "source": row["source"]}
            table.add_row(*(escape(cells[c]) for c in shown))
        return table

    _print_fitted(table, columns, ("commas", "source", "params", "description"))


CHOICES_WIDTH = 30  # a Literal's choices up to this wide stay on one line


def _choices_text(choices: list | None) -> str:
    """``(max|avg)``: what a ``Literal`` option takes, shown after its default."""
    from mnistctl.registry import format_value

    return f"({'|'.join(map(format_value, choices))})" if choices else ""


def _option_lines(option: str, takes: str, width: int | None) -> list[str]:
    """``pool=max (max|avg)`` on one line, or in lines of ``width``: the default broken after its commas, the choices below it."""
    from rich.cells import cell_len

    from mnistctl.console import wrap_at

    whole = f"{option} {takes}".rstrip()
    if width is None or cell_len(whole) <= width:
        return [whole]
    return wrap_at(option, width, ",", hard=False) + (wrap_at(takes, width, "|", hard=False) if takes else [])


def _print_fitted(table, columns: list[str], steps: tuple[str, ...]) -> None:
    """Print ``table(shown, commas)`` as wide as it is, else narrowed by ``steps`` in order until it fits the terminal:
    "commas" wraps lists after their commas, any other step leaves that column out (said below the table). A
    wrapping column keeps at least READABLE cells. Names and options are never cut: a table still too wide is
    printed at its own width."""
    from mnistctl.console import print_whole, table_width

    shown, commas, left_out = list(columns), False, []
    for step in steps:
        if table_width(table(shown, commas, measuring=True)) <= out.width:
            break
        if step == "commas":
            commas = True
        elif step in shown:
            shown.remove(step)
            left_out.append(step)
    final = table(shown, commas)
    if table_width(table(shown, commas, measuring=True)) <= out.width:
        out.print(final)
    else:
        print_whole(final)
    if left_out:
        said = " and ".join([", ".join(left_out[:-1]), left_out[-1]] if len(left_out) > 1 else left_out)
        out.print(f"[dim]{said} left out to fit the terminal; --json has every column[/]")


@app.callback(invoke_without_command=True)
def everything(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print all four lists as one JSON object.")) -> None:
    """With no kind named, every table: architectures, schedulers, optimizers and plugins."""
    from mnistctl.errors import UsageError

    if ctx.invoked_subcommand is not None:
        if as_json:
            raise UsageError("--json goes after the kind", f"mnistctl list {ctx.invoked_subcommand} --json")
        return
    if as_json:
        print(dumps({**{kind: _spec_rows(kind) for kind in KINDS}, "plugins": _plugin_rows()}, indent=2, default=str))
        return
    for kind in KINDS:
        _show_specs(kind, "*", False)
        out.print()
    plugins(False)


@app.command()
def archs(pattern: str = PATTERN, as_json: bool = JSON) -> None:
    """Architectures, with parameter counts and options."""
    _show_specs("archs", pattern, as_json)


@app.command()
def schedulers(pattern: str = PATTERN, as_json: bool = JSON) -> None:
    """Learning-rate schedulers and their options."""
    _show_specs("schedulers", pattern, as_json)


@app.command()
def optimizers(pattern: str = PATTERN, as_json: bool = JSON) -> None:
    """Optimizers and their options."""
    _show_specs("optimizers", pattern, as_json)


@app.command()
def plugins(as_json: bool = JSON) -> None:
    """Installed plugins, built-in and third-party."""
    from rich.markup import escape
    from rich.table import Table

    rows = _plugin_rows()
    if as_json:
        print(dumps(rows, indent=2))
        return

    def table(shown: list[str], commas: bool, measuring: bool = False):
        table = Table(title="Plugins", title_justify="left")
        for col in shown:  # register_archs: archs
            table.add_column(col, no_wrap=col != "registers", max_width=READABLE if measuring and col == "registers" else None)
        for r in rows:
            hooks = ", ".join(h.removeprefix("register_") for h in r["hooks"])
            if r["error"]:
                hooks = f"[red]failed: {escape(r['error'])}[/]" if not r["loaded"] else f"{hooks} [yellow]({escape(r['error'])})[/]" if hooks else f"[yellow]{escape(r['error'])}[/]"
            cells = {"name": f"[bold cyan]{escape(r['name'])}[/]", "module": escape(r["module"]), "package": escape(r["package"]),
                     "version": escape(r["version"]), "registers": hooks}
            table.add_row(*(cells[c] for c in shown))
        return table

    _print_fitted(table, ["name", "module", "package", "version", "registers"], ("module", "version", "package"))

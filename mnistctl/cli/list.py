"""``mnistctl list``: registered architectures, schedulers, optimizers and plugins."""

from __future__ import annotations

import json

import typer

from mnistctl.console import out

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
        raise NotFoundError(f"No {registry(kind).kind} matches '{pattern}'", suggest(pattern, registry(kind).names()))
    return [
        {
            "name": s.name,
            "description": s.description,
            **({"params": s.params} if kind == "archs" else {}),
            "defaults": {k: list(v) if isinstance(v, tuple) else v for k, v in s.defaults.items()},
            "source": s.source,
        }
        for s in specs
    ]


def _plugin_rows() -> list[dict]:
    from mnistctl.plugins import plugin_infos

    return [{**i.__dict__, "hooks": list(i.hooks)} for i in plugin_infos()]


def _show_specs(kind: str, pattern: str, as_json: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mnistctl.plugins import registry
    from mnistctl.registry import format_value

    rows = _spec_rows(kind, pattern)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{registry(kind).kind.capitalize()}s", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("description")
    if kind == "archs":
        table.add_column("params", justify="right")
    table.add_column("defaults", style="dim")
    table.add_column("source", style="green")
    for row in rows:
        defaults = "\n".join(f"{k}={format_value(v)}" for k, v in row["defaults"].items()) or "-"
        params = [f"{row['params']:,}" if row.get("params") else "?"] if kind == "archs" else []
        table.add_row(*map(escape, [row["name"], row["description"], *params, defaults, row["source"]]))
    out.print(table)


@app.callback(invoke_without_command=True)
def everything(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print all four lists as one JSON object.")) -> None:
    """With no kind named, every table: architectures, schedulers, optimizers and plugins."""
    from mnistctl.errors import UsageError

    if ctx.invoked_subcommand is not None:
        if as_json:
            raise UsageError("--json goes after the kind", f"mnistctl list {ctx.invoked_subcommand} --json")
        return
    if as_json:
        print(json.dumps({**{kind: _spec_rows(kind) for kind in KINDS}, "plugins": _plugin_rows()}, indent=2))
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
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Plugins", title_justify="left")
    for col in ("name", "module", "package", "version", "registers"):  # register_archs: archs
        table.add_column(col)
    for r in rows:
        hooks = ", ".join(h.removeprefix("register_") for h in r["hooks"])
        if r["error"]:
            hooks = f"{hooks} [yellow]({escape(r['error'])})[/]" if hooks else f"[red]failed: {escape(r['error'])}[/]"
        table.add_row(f"[bold cyan]{escape(r['name'])}[/]", escape(r["module"]), escape(r["package"]), escape(r["version"]), hooks)
    out.print(table)

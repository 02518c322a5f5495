"""The ``mnistctl watch`` app: a Dashboard for one run, keys to switch runs, and ``train --tui``."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from mnistctl.runs import STALLED_AFTER, Kind, Run, Status, list_runs
from mnistctl.runs.reader import read_events
from mnistctl.tui.dashboard import Dashboard, Note


NOTICE_SECONDS = 10


class KeysScreen(ModalScreen):
    """The keys, over the dashboard; any key closes it."""

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.keys = bindings

    def compose(self) -> ComposeResult:
        lines = [f"[b]{b.key_display or b.key:>7}[/]  {b.tooltip or b.description}" for b in self.keys]
        yield Static("\n".join(["[b]Keys[/]", "", *lines, "", "[dim]press any key[/]"]), id="keys")

    def on_key(self) -> None:
        self.dismiss()


class KeysFooter(Footer):
    """The keys on one line: compact where they do not all fit, then the least used left out whole (``?`` lists them all)."""

    LEFT_OUT_FIRST = ("latest", "switch(-1)", "switch(1)", "layers")
    left_out: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        return (key for key in super().compose() if getattr(key, "action", None) not in self.left_out)

    def on_resize(self) -> None:
        labels = {b.action: f"{self.app.get_key_display(b)} {b.description}" for _, b, _, _ in self.screen.active_bindings.values() if b.show}
        compact, left_out = fitting_keys(labels, self.size.width, self.LEFT_OUT_FIRST)
        if (compact, left_out) != (self.compact, self.left_out):
            self.compact, self.left_out = compact, left_out
            self.refresh(recompose=True)


def fitting_keys(labels: dict[str, str], width: int, left_out_first: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """Whether the footer is compact, and the actions it leaves out, for the keys' labels (``q Quit``, by action)
    to fit ``width``: a label takes a cell either side, or compact, a cell between it and the next."""
    if width <= 0 or sum(cell_len(label) + 2 for label in labels.values()) <= width:
        return False, ()
    left_out: list[str] = []
    for action in left_out_first:
        if sum(cell_len(label) + 1 for a, label in labels.items() if a not in left_out) - 1 <= width:
            break
        left_out.append(action)
    return True, tuple(left_out)


class TrainingEnded(Message):
    """Posted by the training thread of ``train --tui`` when trainer.run() returns or raises.

    ``logged`` says whether the run's own end event already reports the failure (read there, off the UI thread).
    """

    def __init__(self, run_path: Path, error: str | None) -> None:
        super().__init__()
        self.run_path, self.error, self.ended_at = Path(run_path), error, time.time()
        self.logged = error is not None and failure_logged(self.run_path)


class WatchApp(App):
    CSS_PATH = Path(__file__).with_name("dashboard.tcss")
    TITLE = "mnistctl watch"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "keys", "Keys", key_display="?"),
        Binding("n", "switch(1)", "Next", tooltip="Next run"),
        Binding("p", "switch(-1)", "Previous", tooltip="Previous run"),
        Binding("l", "latest", "Latest", tooltip="Latest run"),
        Binding("v", "layers", "Layers", tooltip="Layers view, or back to the charts"),
    ]

    def __init__(self, run_path: Path, runs_root: Path | None = None, stalled_after: float = STALLED_AFTER, poll: float = 0.25):
        super().__init__()
        self.run_path = Path(run_path)
        self.runs_root = Path(runs_root) if runs_root else self.run_path.parent
        self.stalled_after = stalled_after
        self.poll = poll
        self.layers_view = False
        self.failure: TrainingEnded | None = None  # one its run's events do not report: noted in its event log when on screen

    def compose(self) -> ComposeResult:
        yield self._dashboard()
        yield KeysFooter(show_command_palette=False)  # ^p still opens it; the room is kept for the keys

    def _dashboard(self) -> Dashboard:
        dashboard = Dashboard(self.run_path, self.stalled_after, self.poll, id="dashboard")
        dashboard.show_layers(self.layers_view)
        return dashboard

    @property
    def dashboard(self) -> Dashboard:
        return self.query_one(Dashboard)

    async def watch_run(self, path: Path) -> None:
        if path.resolve() == self.run_path.resolve():
            return
        self.run_path = path
        await self.dashboard.remove()
        await self.mount(self._dashboard(), before=self.query_one(Footer))
        self.sub_title = path.name
        self._note_failure()

    async def action_switch(self, offset: int) -> None:
        paths = [r.path for r in list_runs(self.runs_root)]
        if len(paths) < 2:
            self.notify(f"no other runs in {self.runs_root}", severity="warning")
            return
        here = [p.resolve() for p in paths]
        index = here.index(self.run_path.resolve()) if self.run_path.resolve() in here else -1
        await self.watch_run(paths[(index + offset) % len(paths)])

    async def action_latest(self) -> None:
        paths = [r.path for r in list_runs(self.runs_root)]
        if paths:
            await self.watch_run(paths[-1])

    def action_layers(self) -> None:
        self.layers_view = not self.layers_view
        self.dashboard.show_layers(self.layers_view)

    def action_keys(self) -> None:
        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen([*self.BINDINGS, Binding("ctrl+p", "command_palette", "Command palette", key_display="^p")]))

    def on_mount(self) -> None:
        self.sub_title = self.run_path.name

    def on_training_ended(self, message: TrainingEnded) -> None:
        if message.error:
            self.failure = None if message.logged else message
            self._note_failure()
            self.notify(message.error, title="training failed", severity="error", timeout=NOTICE_SECONDS)
        else:
            self.notify("training is over; press q to quit", timeout=NOTICE_SECONDS)

    def _note_failure(self) -> None:
        if self.failure and self.failure.run_path.resolve() == self.run_path.resolve():
            self.dashboard.post_message(Note(f"training failed: {self.failure.error}", "error", self.failure.ended_at))


def run_with_trainer(trainer: Any, app: WatchApp | None = None) -> int:
    """Train in a background thread while the dashboard watches the run; quitting stops training.

    Returns 0 when training finished, 130 when it was stopped first, 1 when it failed.
    """
    run_dir = getattr(trainer, "run_dir", None) or trainer.prepare()
    app = app or WatchApp(Path(run_dir))
    outcome: dict[str, Any] = {}

    def train() -> None:
        try:
            outcome["summary"] = trainer.run()
        except BaseException as exc:  # noqa: BLE001 - reported after the app closes
            outcome["error"] = exc
        try:
            app.post_message(TrainingEnded(run_dir, describe_error(outcome["error"]) if "error" in outcome else None))
        except RuntimeError:  # Ctrl-C ended the app's event loop before the app could close
            pass

    thread = threading.Thread(target=train, name="mnistctl-train", daemon=True)
    thread.start()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: app.exit())
    try:
        app.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopped = thread.is_alive()
        if stopped:
            trainer.request_stop()
        thread.join()
    return exit_code(outcome, stopped)


def failure_logged(run_path: Path) -> bool:
    """Whether the run's metrics end with a failed end event, as the trainer writes before it raises."""
    events = read_events(Run(run_path).metrics_path).events
    return bool(events) and events[-1]["event"] == Kind.END and events[-1]["status"] == Status.FAILED


def exit_code(outcome: dict[str, Any], stopped: bool) -> int:
    from mnistctl.console import report
    from mnistctl.errors import MnistctlError

    error = outcome.get("error")
    if error is not None:
        if isinstance(error, MnistctlError):
            report(error.message, error.hint)
        else:
            report(describe_error(error))
        return 1
    status = Status((outcome.get("summary") or {}).get("status", Status.INTERRUPTED))
    if status.completed:
        return 0
    if status == Status.FAILED:
        return 1
    return 130 if stopped or status == Status.INTERRUPTED else 0


def describe_error(exc: BaseException) -> str:
    from mnistctl.errors import MnistctlError

    return str(exc) if isinstance(exc, MnistctlError) else f"{type(exc).__name__}: {exc}"

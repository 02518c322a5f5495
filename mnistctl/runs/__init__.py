"""The run directory: the one contract between train and every command that reads a run.

layout.py says where everything lives, events.py what metrics.jsonl holds and which status a run is
in, reader.py reads the metrics and writer.py writes a run; checkpoint.py stores tensors without pickle.
"""

from mnistctl.runs.events import Kind, Status
from mnistctl.runs.layout import (
    CHECKPOINTS,
    RUNS_ENV,
    STALLED_AFTER,
    Run,
    create,
    first_run_hint,
    is_run_dir,
    list_runs,
    make_root,
    resolve,
    resolve_checkpoint,
    runs_dir,
    shown_names,
    slug,
    validate_name,
)
from mnistctl.runs.writer import RunWriter

__all__ = [
    "CHECKPOINTS", "RUNS_ENV", "STALLED_AFTER", "Kind", "Run", "RunWriter", "Status",
    "create", "first_run_hint", "is_run_dir", "list_runs", "make_root", "resolve", "resolve_checkpoint", "runs_dir", "shown_names", "slug",
    "validate_name",
]

"""The run directory: the one contract between train and every command that reads a run."""

from mnistctl.runs.layout import CHECKPOINTS, STALLED_AFTER, Run, create, list_runs, resolve, resolve_checkpoint, runs_dir, slug

__all__ = ["CHECKPOINTS", "STALLED_AFTER", "Run", "create", "list_runs", "resolve", "resolve_checkpoint", "runs_dir", "slug"]

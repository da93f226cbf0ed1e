"""Run folders, shared by minifoca and scaled: every run leaves its config, the git revision,
metrics per epoch (JSON lines) and a one-line JSON summary.

    <out_dir>/<name>/config.json    the full config (after presets and overrides)
                     git.txt        revision the code ran at (+ "-dirty" with uncommitted changes)
                     metrics.jsonl  one JSON record per epoch and stage
                     summary.json   the final one-line result, also printed as the last stdout line
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class RunDirError(RuntimeError):
    """The run folder cannot be used (exists already, or not writable)."""


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (rev or "unknown") + ("-dirty" if dirty else "")


def default_name(*parts) -> str:
    return "-".join(str(p) for p in parts) + "-" + time.strftime("%Y%m%d-%H%M%S")


class RunDir:
    def __init__(self, path, config: dict, *, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.check(self.path, resume=resume, overwrite=overwrite)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if overwrite and not resume:
                for name in ("metrics.jsonl", "summary.json"):
                    (self.path / name).unlink(missing_ok=True)
            if not resume:
                write_json(self.path / "config.json", config, indent=1)
            (self.path / "git.txt").write_text(git_revision() + "\n")
        except OSError as e:
            raise RunDirError(f"cannot write the run folder {self.path}: {e.strerror}; "
                              "choose another --out_dir") from None

    @staticmethod
    def check(path, *, resume: bool = False, overwrite: bool = False) -> None:
        """RunDirError when path holds a run and neither resume nor overwrite: callable before a long load."""
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not (resume or overwrite):
            raise RunDirError(f"run folder {path} exists; pass --resume to continue it or "
                              "--overwrite to replace it")

    def log(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def rewrite_log(self, records: list[dict]) -> None:
        """Replace metrics.jsonl with `records` (on resume: what the checkpoint knows)."""
        write_text_atomic(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def finish(self, summary: dict) -> str:
        """Writes summary.json and returns its one-line JSON."""
        line = json.dumps(summary)
        (self.path / "summary.json").write_text(line + "\n")
        return line


def write_text_atomic(path, text: str) -> None:
    """A killed run never leaves a half-written file: write beside it, then rename."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path, obj, indent=None) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def read_jsonl(path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]

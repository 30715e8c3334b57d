"""Shared fixtures: run the CLI in a subprocess, read TensorBoard event files back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m sb3_snn ARGS`` (or any ``-m module``) and fail the test with its output on error."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(args)}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def scalar_tags(event_dir: Path) -> dict[str, list[float]]:
    """Every scalar tag in the TensorBoard event files under ``event_dir``, with its values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(event_dir.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {event_dir}"
    tags: dict[str, list[float]] = {}
    for file in files:
        accumulator = EventAccumulator(str(file))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            tags.setdefault(tag, []).extend(event.value for event in accumulator.Scalars(tag))
    return tags


@pytest.fixture
def cli():
    """The :func:`run_cli` helper."""
    return run_cli

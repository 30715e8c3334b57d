"""Stages that write their outputs to a folder and are skipped when those outputs are already valid.

A stage's key is everything its result depends on: its settings, the SHA-256 of every input file it
reads from outside the results folder (a given teacher zip), and the SHA-256 of every output of the
stages it builds on. A finished stage leaves ``<out>/<stage>/stage.json``: its key, its summary and the
SHA-256 of every output file. A rerun skips the stage when that record holds the same key and every
output still hashes the same; anything else runs it again. So a new model saved at the same teacher path
reruns the teacher stage, and, through the output hashes, every stage after it.

A stage writes ``started.json`` (its key) before it works. A stage killed mid-way reruns with the same
key, and its training resumes from its checkpoint; a stage whose key changed has its previous folder
moved to ``<stage>.previous`` (replacing an older one) first, so that nothing from other inputs is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD = "stage.json"
STARTED = "started.json"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class StageOutcome:
    """What a stage function returns: a JSON-able summary and the files it wrote (relative to its folder)."""

    summary: dict[str, Any]
    outputs: list[str]


def _plain(value: Any) -> Any:
    """``value`` as JSON would read it back (tuples become lists, numbers stay numbers)."""
    return json.loads(json.dumps(value, default=float))


def stage_key(settings: dict[str, Any], inputs: dict[str, Path] | None = None,
              upstream: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """What a stage's result depends on.

    :param settings: the settings it reads
    :param inputs: files it reads from outside the results folder, by the settings key that names them
    :param upstream: the output hashes (``stage.json``'s ``outputs``) of the stages it builds on, by stage
    """
    return _plain({"settings": settings, "inputs": {name: sha256(Path(path)) for name, path in (inputs or {}).items()},
                   "upstream": upstream or {}})


def stage_outputs(out: Path, name: str) -> dict[str, str]:
    """The output hashes recorded by the finished stage ``name`` of the results folder ``out``.

    :raises FileNotFoundError: the stage has not finished (it has no record)
    """
    path = Path(out) / name / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"stage {name!r} has not finished: {path} is missing")
    return dict(json.loads(path.read_text())["outputs"])


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def valid_record(folder: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stage's summary if its record holds ``key`` and its outputs are intact, else ``None``."""
    record = _read(folder / RECORD)
    if record is None or record.get("key") != _plain(key):
        return None
    for name, digest in record.get("outputs", {}).items():
        if not (folder / name).is_file() or sha256(folder / name) != digest:
            return None
    return record["summary"]


def run_stage(
    name: str,
    out: Path,
    key: dict[str, Any],
    function: Callable[[Path], StageOutcome],
    on_skip: Callable[[str], None] | None = None,
    on_superseded: Callable[[str, Path], None] | None = None,
) -> dict[str, Any]:
    """Run ``function(folder)`` for stage ``name`` unless a valid record says it is done.

    :param name: stage name (its folder under ``out``)
    :param out: the results folder
    :param key: everything the stage's result depends on (:func:`stage_key`); a change reruns it
    :param function: does the work in the given folder
    :param on_skip: called with the stage name when it is skipped
    :param on_superseded: called with the stage name and where its previous folder went, when its key changed
    :return: the stage's summary
    """
    folder = Path(out) / name
    key = _plain(key)
    summary = valid_record(folder, key)
    if summary is not None:
        if on_skip is not None:
            on_skip(name)
        return summary
    previous = _read(folder / RECORD) or _read(folder / STARTED)
    if folder.is_dir() and any(folder.iterdir()) and (previous is None or previous.get("key") != key):
        moved = folder.with_name(name + ".previous")  # outputs of other inputs: kept once, never reused
        if moved.exists():
            shutil.rmtree(moved)
        folder.rename(moved)
        if on_superseded is not None:
            on_superseded(name, moved)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).unlink(missing_ok=True)
    _write(folder / STARTED, {"stage": name, "key": key})
    outcome = function(folder)
    record = {
        "stage": name,
        "key": key,
        "summary": outcome.summary,
        "outputs": {output: sha256(folder / output) for output in outcome.outputs},
    }
    _write(folder / RECORD, record)
    return _plain(outcome.summary)


def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float))
    os.replace(tmp, path)

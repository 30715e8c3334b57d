"""Stages that write their outputs to a folder and are skipped when those outputs are already valid.

A finished stage leaves ``<out>/<stage>/stage.json``: its summary and the SHA-256 of every output
file. A rerun skips the stage when that record exists, names the same settings and every file still
hashes the same; anything else (no record, changed settings, a missing or altered file) runs it again.
A stage killed mid-way has no record, so it reruns, and its training resumes from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD = "stage.json"


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


def valid_record(folder: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The stage's summary if its record matches ``settings`` and its outputs are intact, else ``None``."""
    path = folder / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if record.get("settings") != json.loads(json.dumps(settings)):
        return None
    for name, digest in record.get("outputs", {}).items():
        if not (folder / name).is_file() or sha256(folder / name) != digest:
            return None
    return record["summary"]


def run_stage(
    name: str,
    out: Path,
    settings: dict[str, Any],
    function: Callable[[Path], StageOutcome],
    on_skip: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``function(folder)`` for stage ``name`` unless a valid record says it is done.

    :param name: stage name (its folder under ``out``)
    :param out: the results folder
    :param settings: everything the stage's result depends on (a change reruns it)
    :param function: does the work in the given folder
    :param on_skip: called with the stage name when it is skipped
    :return: the stage's summary
    """
    folder = Path(out) / name
    summary = valid_record(folder, settings)
    if summary is not None:
        if on_skip is not None:
            on_skip(name)
        return summary
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).unlink(missing_ok=True)
    outcome = function(folder)
    record = {
        "stage": name,
        "settings": settings,
        "summary": outcome.summary,
        "outputs": {output: sha256(folder / output) for output in outcome.outputs},
    }
    tmp = folder / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float))
    os.replace(tmp, folder / RECORD)
    return json.loads(json.dumps(outcome.summary, default=float))

"""Self-describing artifacts: a folder with ``deployment.json`` (format, version, checksums) and data files.

Layout written by :func:`write_artifact`::

    deployment.json          {"format", "format_version", "backend", ..., "files": {name: sha256}, "checksum"}
    arrays.npz               numeric arrays (read with ``allow_pickle=False``)
    description/             the spiking description (description.json + weights.npz)
    <extra files>            e.g. a NIR graph

``checksum`` is the SHA-256 of the canonical JSON of the document without it, so that an edited
``deployment.json`` is detected as well as an edited or truncated data file. Reading never unpickles
and never executes code; any mismatch raises :class:`~sb3_snn.backends.base.ArtifactError`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends.base import ArtifactError, _json_default
from sb3_snn.spiking.description import SpikingDescription

DOCUMENT = "deployment.json"
ARRAYS = "arrays.npz"
DESCRIPTION = "description"


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _document_checksum(document: dict[str, Any]) -> str:
    body = {key: value for key, value in document.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=_json_default).encode()).hexdigest()


def write_artifact(
    path: str | Path,
    *,
    format: str,
    format_version: int,
    document: dict[str, Any],
    arrays: dict[str, np.ndarray],
    description: SpikingDescription,
    extra_files: tuple[str, ...] = (),
) -> Path:
    """Write an artifact folder (see the module docstring) and return it.

    :param path: the folder (created)
    :param format: a format name, e.g. ``"sb3-snn/nc64c-deployment"``
    :param format_version: an integer bumped on incompatible changes
    :param document: JSON-compatible content (spec, mapping, scales, ...)
    :param arrays: numeric arrays (no object arrays)
    :param description: the spiking description the deployment was compiled from
    :param extra_files: names of files the caller already wrote into the folder, to be checksummed
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; artifacts hold numeric arrays only")
    to_save: dict[str, Any] = {name: np.asarray(value) for name, value in arrays.items()}  # Any: see np.savez's **kwds
    np.savez(folder / ARRAYS, **to_save)
    description.to_files(folder / DESCRIPTION)
    names = [ARRAYS, f"{DESCRIPTION}/description.json", f"{DESCRIPTION}/weights.npz", *extra_files]
    full = {"format": format, "format_version": format_version, **document}
    full["files"] = {name: _sha256(folder / name) for name in names}
    full["checksum"] = _document_checksum(full)
    (folder / DOCUMENT).write_text(json.dumps(full, indent=2, default=_json_default))
    return folder


def read_artifact(
    path: str | Path, *, format: str, format_version: int
) -> tuple[dict[str, Any], dict[str, np.ndarray], SpikingDescription]:
    """Read and verify an artifact folder; returns ``(document, arrays, description)``.

    :param path: the folder written by :func:`write_artifact`
    :param format: the expected format name
    :param format_version: the supported version
    :raises ArtifactError: on a missing file, another format or version, a checksum mismatch
        (tampered or corrupted), unreadable data or pickled arrays
    """
    folder = Path(path)
    document_path = folder / DOCUMENT
    if not document_path.is_file():
        raise ArtifactError(f"{folder}: not a deployment artifact (no {DOCUMENT})")
    try:
        document = json.loads(document_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{document_path}: corrupted ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != format:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ArtifactError(f"{document_path}: format {found!r} is not {format!r}")
    if document.get("format_version") != format_version:
        raise ArtifactError(
            f"{document_path}: format version {document.get('format_version')!r} is not supported "
            f"(this version reads {format_version})"
        )
    if document.get("checksum") != _document_checksum(document):
        raise ArtifactError(f"{document_path}: checksum mismatch: the document was modified (tampered or corrupted)")
    for name, expected in document.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise ArtifactError(f"{folder}: missing file {name} listed in {DOCUMENT}")
        if _sha256(file) != expected:
            raise ArtifactError(f"{file}: checksum mismatch: the file was modified (tampered or corrupted)")
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        description = SpikingDescription.from_files(folder / DESCRIPTION)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:  # allow_pickle=False raises ValueError
        raise ArtifactError(f"{folder}: unreadable data: {type(exc).__name__}: {exc}") from exc
    return document, arrays, description

"""Benchmark records: one validated :class:`Row` per measured number, stored as JSON Lines.

Every benchmark writes its results with :func:`append_rows` to ``benchmarks/records/<suite>.jsonl``
(one JSON object per line, the fields of :class:`Row`); ``benchmarks/report.py`` reads them back
with :func:`load_rows` and renders the README results block and ``docs/results.md`` from them alone.

Provenance: :func:`append_rows` stores where a row came from in ``extra["run"]`` (git commit and
whether the tree had local changes, the machine, the command line, the UTC time), unless the
caller already set ``extra["run"]``. Each line is therefore self-contained: rows can be filtered,
moved between files or dropped without losing which machine and commit measured them.

Honesty fields: ``n`` is how many samples the value averages (evaluation episodes, timing
repetitions, frames) and ``stderr`` its standard error; a value that rests on one training seed
says so with ``setting["training_seeds"]`` (the count of independently trained models behind it)
so that the report can flag thin evidence.

Scripts run as ``python benchmarks/<script>.py`` have ``benchmarks/`` (not the repository root) on
``sys.path``; they make the package importable first::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.records import Row, append_rows
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "records"

#: Units a row may carry. ``return``: undiscounted episode return; ``fraction``: a share in [0, 1]
#: (agreement, success rate); ``ratio``/``x``: a dimensionless quotient (speed-up); ``synops``:
#: synaptic operations per decision; ``count``: anything counted (seeds, neurons, spikes).
UNITS: tuple[str, ...] = (
    "return",
    "fraction",
    "percent",
    "ratio",
    "x",
    "count",
    "synops",
    "spikes",
    "ops",
    "steps",
    "timesteps",
    "episodes",
    "frames",
    "bits",
    "bytes",
    "s",
    "ms",
    "us",
    "ns",
    "steps/s",
    "frames/s",
    "decisions/s",
    "J",
    "mJ",
    "uJ",
    "nJ",
    "pJ",
    "W",
    "mW",
    "error",
    "loss",
    "none",
)

_NAME = re.compile(r"^\S[^\x00-\x1f]{0,159}$")
_SUITE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


def _check_name(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Row.{what} must be a non-empty string, got {value!r}")
    if not _NAME.match(value):
        raise ValueError(f"Row.{what}={value!r}: one line of at most 160 characters, not starting with a space")


def _check_json(what: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise TypeError(f"Row.{what} must be a dict, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"Row.{what} keys must be strings, got {key!r}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Row.{what} must hold JSON values (no NaN/inf, no objects): {error}") from error


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Row:
    """One measured number and what it was measured on.

    :param suite: the records file it belongs to (``benchmarks/records/<suite>.jsonl``): lower-case
        letters, digits, ``_`` and ``-``
    :param experiment: the experiment inside the suite (one table of the report)
    :param method: the method measured (``SDN``, ``CVTC``, ``conversion``, ``DQN teacher``, ...)
    :param env: the Gymnasium environment id, or ``-`` where there is none (pure speed tests)
    :param setting: the knobs that distinguish rows of one experiment (time steps, width, ...);
        ``training_seeds`` counts the independently trained models behind the value
    :param seed: the seed of this single run, or ``None`` for an aggregate over seeds
    :param metric: what was measured (``mean_return``, ``latency``, ``agreement``, ...)
    :param value: the finite number
    :param stderr: its standard error (``None`` when not applicable or unknown)
    :param n: how many samples ``value`` averages (episodes, repetitions), ``None`` if not a mean
    :param unit: one of :data:`UNITS`
    :param extra: anything else JSON-serialisable (paper figure, per-episode returns, provenance)
    """

    suite: str
    experiment: str
    method: str
    env: str
    setting: dict[str, Any]
    seed: int | None
    metric: str
    value: float
    stderr: float | None
    n: int | None
    unit: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.suite, str) or not _SUITE.match(self.suite):
            raise ValueError(f"Row.suite={self.suite!r}: use lower-case letters, digits, _ and - (e.g. 'sdn')")
        _check_name("experiment", self.experiment)
        _check_name("method", self.method)
        if self.env != "-":
            _check_name("env", self.env)
        _check_name("metric", self.metric)
        _check_json("setting", self.setting)
        _check_json("extra", self.extra)
        if self.seed is not None and not _is_int(self.seed):
            raise TypeError(f"Row.seed must be an int or None, got {self.seed!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise TypeError(f"Row.value must be a number, got {self.value!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"Row.value must be finite, got {self.value!r} ({self.experiment}/{self.metric})")
        object.__setattr__(self, "value", float(self.value))
        if self.stderr is not None:
            if isinstance(self.stderr, bool) or not isinstance(self.stderr, int | float):
                raise TypeError(f"Row.stderr must be a number or None, got {self.stderr!r}")
            if not math.isfinite(self.stderr) or self.stderr < 0:
                raise ValueError(f"Row.stderr must be finite and >= 0, got {self.stderr!r}")
            object.__setattr__(self, "stderr", float(self.stderr))
        if self.n is not None and (not _is_int(self.n) or self.n < 1):
            raise ValueError(f"Row.n must be a positive int or None, got {self.n!r}")
        if self.unit not in UNITS:
            raise ValueError(f"Row.unit={self.unit!r} is not known; allowed: {', '.join(UNITS)}")

    def to_json(self) -> str:
        """One JSON Lines line (no trailing newline)."""
        return json.dumps(asdict(self), allow_nan=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Row:
        """A validated row from a parsed JSON object with exactly the fields of :class:`Row`.

        :param data: the parsed object
        """
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in data]
        unknown = [key for key in data if key not in names]
        if missing or unknown:
            raise ValueError(f"record fields: missing {missing}, unknown {unknown}; expected {names}")
        return cls(**{name: data[name] for name in names})

    @property
    def training_seeds(self) -> int | None:
        """The count of independently trained models behind the value, when recorded."""
        value = self.setting.get("training_seeds")
        return value if _is_int(value) else None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine() -> str:
    """CPU model, core count, OS, and the torch build and threads when torch is loaded."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release().split('-')[0]}"
    torch = sys.modules.get("torch")
    if torch is not None:
        text += f", torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            text += f", GPU {torch.cuda.get_device_name()}"
    return text


def run_info() -> dict[str, Any]:
    """Where rows come from: commit (``+dirty`` with local changes), machine, command, UTC time."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    if commit != "unknown" and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    script = sys.argv[0] if sys.argv else ""
    if script.endswith(".py"):
        path = Path(script).resolve()
        script = "python " + (path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else script)
    return {
        "commit": commit,
        "machine": machine(),
        "command": " ".join([script, *sys.argv[1:]]).strip(),
        "time": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _directory(directory: str | os.PathLike[str] | None) -> Path:
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get("SB3_SNN_RECORDS", RECORDS))


def append_rows(
    suite: str, rows: Iterable[Row], *, directory: str | os.PathLike[str] | None = None, run: dict[str, Any] | None = None
) -> Path:
    """Validate ``rows`` and append them to ``<directory>/<suite>.jsonl``.

    :param suite: the suite every row must belong to
    :param rows: the rows; each must be a :class:`Row` with ``row.suite == suite``
    :param directory: where the records live (default ``benchmarks/records``, or ``$SB3_SNN_RECORDS``)
    :param run: provenance stored in ``extra["run"]`` of rows that lack one (default :func:`run_info`)
    :return: the path written
    """
    if not isinstance(suite, str) or not _SUITE.match(suite):
        raise ValueError(f"suite={suite!r}: use lower-case letters, digits, _ and -")
    rows = list(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, Row):
            raise TypeError(f"rows[{index}] must be a benchmarks.records.Row, got {type(row).__name__}")
        if row.suite != suite:
            raise ValueError(f"rows[{index}].suite={row.suite!r} but append_rows was asked for suite {suite!r}")
    info = run if run is not None else (run_info() if rows else {})
    lines = []
    for row in rows:
        if "run" not in row.extra:
            row = Row(**{**asdict(row), "extra": {**row.extra, "run": info}})
        lines.append(row.to_json() + "\n")
    path = _directory(directory) / f"{suite}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def read_rows(path: str | os.PathLike[str]) -> list[Row]:
    """The validated rows of one JSON Lines file; an invalid line raises naming file and line.

    :param path: the ``.jsonl`` file
    """
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = Row.from_dict(json.loads(line))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from error
        if row.suite != path.stem:
            raise ValueError(f"{path}:{number}: suite {row.suite!r} stored in the file of suite {path.stem!r}")
        rows.append(row)
    return rows


def load_rows(suite: str | None = None, *, directory: str | os.PathLike[str] | None = None) -> list[Row]:
    """Read back validated rows: of one suite, or of every ``*.jsonl`` file (sorted by name).

    :param suite: the suite to read, or ``None`` for all
    :param directory: where the records live (default ``benchmarks/records``, or ``$SB3_SNN_RECORDS``)
    """
    base = _directory(directory)
    if suite is not None:
        path = base / f"{suite}.jsonl"
        if not path.exists():
            known = sorted(p.stem for p in base.glob("*.jsonl"))
            raise FileNotFoundError(f"no records for suite {suite!r} in {base}; known suites: {known}")
        return read_rows(path)
    return [row for path in sorted(base.glob("*.jsonl")) for row in read_rows(path)]

"""Optuna storages for studies shared by many workers: a journal file (embedded) or a database (PostgreSQL).

- a path ending in ``.log`` or ``.journal``: Optuna's journal file (``JournalStorage(JournalFileBackend)``),
  embedded, no server;
- a database URL (``postgresql://user@host:5432/db``, ``sqlite:///file.db``): Optuna's ``RDBStorage``, with
  heartbeats: a trial whose worker died is failed by the next worker and queued again
  (``RetryHeartbeatStaleTrialCallback``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import optuna

JOURNAL_SUFFIXES = (".log", ".journal")


def open_storage(storage: str | Path, heartbeat: bool = True, heartbeat_interval: int = 60, grace: int | None = None,
                 max_retry: int = 3) -> optuna.storages.BaseStorage:
    """The Optuna storage named by ``storage`` (see the module docstring).

    :param storage: a ``.log``/``.journal`` path or a database URL
    :param heartbeat: database storages only: send heartbeats and retry trials of dead workers
    :param heartbeat_interval: seconds between heartbeats
    :param grace: seconds without a heartbeat after which a trial counts as dead (default: 2 intervals)
    :param max_retry: how many times one trial is queued again after its worker died
    """
    text = str(storage)
    if text.endswith(JOURNAL_SUFFIXES) and "://" not in text:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(text))
    if "://" not in text:
        raise ValueError(f"storage {text!r} is neither a journal file (ending in {' or '.join(JOURNAL_SUFFIXES)}) "
                         "nor a database URL (postgresql://user@host:port/db, sqlite:///file.db)")
    if text.startswith(("postgresql", "postgres:")):
        try:  # SQLAlchemy 2.1 reads postgresql:// with psycopg 3 (postgresql+psycopg2:// for psycopg2)
            import psycopg  # noqa: F401
        except ImportError as exc:
            if text.startswith(("postgresql://", "postgres://")):
                raise ValueError(f"storage {text!r} needs the PostgreSQL driver psycopg: "
                                 "pip install 'sb3-snn[tune]' (or 'psycopg[binary]')") from exc
    kwargs: dict[str, Any] = {}
    if heartbeat:
        kwargs = dict(heartbeat_interval=heartbeat_interval, grace_period=grace or 2 * heartbeat_interval,
                      heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry))
    engine = {"pool_pre_ping": True} if not text.startswith("sqlite") else {}
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(text, engine_kwargs=engine, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers meeting an empty database at the same moment race to create Optuna's tables; the
            # loser's CREATE fails, and opening again finds the tables made
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def join_study(storage: optuna.storages.BaseStorage, name: str, sampler: optuna.samplers.BaseSampler | None = None,
               directions: Sequence[Literal["minimize", "maximize"]] = ("maximize",)) -> optuna.Study:
    """Create study ``name`` in ``storage`` or load it if another worker did (safe when several start at once).

    :param storage: from :func:`open_storage`
    :param name: the study name
    :param sampler: Optuna sampler of this worker
    :param directions: one per objective
    """
    return optuna.create_study(storage=storage, study_name=name, sampler=sampler, directions=list(directions),
                               load_if_exists=True)

"""What every benchmark script shares: a description of the machine, and saving a run's results.

A script builds one dict per run (``command``, ``machine``, its figures); :func:`write_result` keeps
that dict as a scratch JSON under ``benchmarks/out/results/`` (git-ignored; some scripts read it back
to resume or merge seeds) and appends its rows to ``benchmarks/records/<suite>.jsonl`` through
``benchmarks/result_rows.py``, the records the report is rendered from.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "out" / "results"


def machine(device: str = "cpu") -> str:
    """CPU model, cores, OS, torch build and threads (and the GPU when ``device`` is CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release().split('-')[0]}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def write_result(name: str, record: dict[str, Any], rows: bool = True) -> Path:
    """Write the scratch copy ``benchmarks/out/results/<name>.json`` and append the record's rows.

    :param name: the record's name; it picks the suite (``benchmarks/result_rows.py``'s ``SUITE_OF``)
    :param record: the run's dict
    :param rows: append the rows too (``False`` for partial saves in the middle of a run)
    :return: the scratch JSON's path
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=float))
    if rows:
        save_rows(name, json.loads(json.dumps(record, default=float)))
    return path


def save_rows(name: str, record: dict[str, Any]) -> Path:
    """Append the rows of a run's dict to its suite's records (see ``benchmarks/result_rows.py``).

    :param name: the record's name (picks the suite)
    :param record: the run's dict
    """
    sys.path.insert(0, str(ROOT))
    from benchmarks.result_rows import save_rows as _save

    path = _save(name, json.loads(json.dumps(record, default=str)))
    print(f"appended rows to {path}")
    return path


def zoo_dqn_settings(env_id: str) -> tuple[dict[str, Any], int]:
    """rl_zoo3's own DQN hyperparameters for ``env_id`` (its installed ``hyperparams/dqn.yml``, read with safe
    YAML): the keyword arguments of SB3's ``DQN`` without ``policy``, ``n_timesteps`` and ``policy_kwargs``
    (the zoo writes those as Python source; every teacher sets its own ``net_arch``), and the step budget.

    :param env_id: a section of the zoo's file, e.g. ``"CartPole-v1"``
    :return: ``(hyperparameters, n_timesteps)``
    """
    import rl_zoo3
    import yaml

    table = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml").read_text())
    if env_id not in table:
        raise KeyError(f"rl_zoo3's dqn.yml has no section {env_id!r}")
    section = dict(table[env_id])
    steps = int(float(section.pop("n_timesteps")))
    for key in ("policy", "policy_kwargs"):
        section.pop(key, None)
    return section, steps

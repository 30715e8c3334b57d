"""Pipeline settings: an embedded YAML with one section per environment id, overridable by a file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from sb3_snn import configs


def load_config(env_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """The settings for ``env_id``: the section of ``path`` (default: the embedded ``pipeline.yml``).

    :param env_id: environment id, the section key
    :param path: a pipeline YAML file; its section replaces the embedded one
    :raises KeyError: the file has no section for ``env_id`` (the message lists the sections)
    """
    source = Path(path) if path is not None else configs.config_file("pipeline.yml")
    if not source.is_file():
        raise FileNotFoundError(f"pipeline config {source} not found")
    sections = yaml.safe_load(source.read_text()) or {}
    if env_id not in sections:
        raise KeyError(f"{source} has no section for {env_id!r}; sections: {', '.join(sections) or '(none)'}")
    config = copy.deepcopy(sections[env_id])
    config["env"] = env_id
    return config


def zoo_config(algo: str) -> Path:
    """The shipped zoo config of an algorithm the pipeline trains (CVTC's DDQN uses ``cvtc.yml``).

    :param algo: ``dqn``, ``ddqn``, ``ppo``, ``sdn`` or ``cvtc``
    :raises FileNotFoundError: sb3-snn ships no zoo config for ``algo`` (the message lists those it ships)
    """
    path = configs.zoo_config(algo)
    if path is None:
        shipped = ", ".join(name for name in configs.shipped_configs() if name.startswith("zoo/"))
        raise FileNotFoundError(f"no zoo config for {algo!r} ships with sb3-snn; shipped: {shipped}")
    return path


def zoo_section(config: Path, env_id: str) -> dict[str, Any]:
    """The hyperparameter section rl_zoo3 would use for ``env_id`` in ``config`` (env id, else ``atari``)."""
    from rl_zoo3.exp_manager import ExperimentManager

    sections = yaml.safe_load(config.read_text()) or {}
    if env_id in sections:
        return dict(sections[env_id])
    if ExperimentManager.is_atari(env_id) and "atari" in sections:
        return dict(sections["atari"])
    raise KeyError(f"{config} has no section for {env_id!r}")

"""Pipeline settings: an embedded YAML with one section per environment id, overridable by a file,
checked against :data:`SCHEMA` before anything runs.

:func:`validate_settings` reports every problem at once in one :class:`PipelineConfigError`, each naming the
key path (``sdn.n_timesteps``), what was found and what is allowed: unknown keys (with the closest known
one), wrong types, missing keys, out-of-range values, unknown algorithms, agents, backends and backend options.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sb3_snn import configs


class PipelineConfigError(ValueError):
    """Pipeline settings that cannot run; ``problems`` holds one line per problem, each starting with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def _did_you_mean(found: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(found), allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# Checks of one value: each returns a problem description or None.
def _integer(minimum: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return f"expected an integer >= {minimum}, found {value!r} ({type(value).__name__})"
        return None if value >= minimum else f"must be >= {minimum}, found {value!r}"
    return check


def _number(low: float, high: float | None = None, low_open: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        bounds = f"{'>' if low_open else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number {bounds}, found {value!r} ({type(value).__name__})"
        if (value <= low if low_open else value < low) or (high is not None and value > high):
            return f"must be {bounds}, found {value!r}"
        return None
    return check


def _of_type(*types: type, name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, types) else f"expected {name}, found {value!r} ({type(value).__name__})"
    return check


def _eval_freq(value: Any) -> str | None:
    problem = _integer(-1)(value)
    return problem or ("must be -1 (no evaluation) or >= 1, found 0" if value == 0 else None)


def _list_of(item: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not value:
            return f"expected a non-empty list, found {value!r}"
        for position, entry in enumerate(value):
            problem = item(entry)
            if problem:
                return f"item {position}: {problem}"
        return None
    return check


_POSITIVE = _integer(1)
_OPTIONAL_DICT = _of_type(dict, type(None), name="a mapping or null")
_TRAINING = {"n_timesteps": _POSITIVE, "eval_freq": _eval_freq, "eval_episodes": _POSITIVE, "hyperparams": _OPTIONAL_DICT}

#: Every key the pipeline reads: section -> key -> (required, check). A section of ``None`` value is a
#: stage that is switched off (``sdn``, ``conversion``, ``cvtc``, ``export``).
SCHEMA: dict[str, dict[str, tuple[bool, Callable[[Any], str | None]]]] = {
    "teacher": {"algo": (True, _of_type(str, name="an algorithm id")),
                "path": (False, _of_type(str, type(None), name="a file path or null")),
                **{key: (key == "n_timesteps", check) for key, check in _TRAINING.items()}},
    "sdn": {key: (key == "n_timesteps", check) for key, check in _TRAINING.items()},
    "conversion": {"percentile": (True, _number(0, 100, low_open=True)), "timesteps": (True, _list_of(_POSITIVE)),
                   "readouts": (True, _list_of(_of_type(str, name="a readout name"))),
                   "n_calibration": (True, _POSITIVE), "sweep_episodes": (True, _POSITIVE),
                   "method": (False, _of_type(str, name="a conversion method")), "low_latency": (False, _OPTIONAL_DICT),
                   "goal": (False, _number(0, 1, low_open=True)), "held_out": (False, _POSITIVE)},
    "cvtc": {"algo": (True, _of_type(str, name="an algorithm id")),
             **{key: (key == "n_timesteps", check) for key, check in _TRAINING.items()}},
    "evaluation": {"episodes": (True, _POSITIVE), "epsilon": (True, _number(0, 1)),
                   "conversion_timesteps": (False, _POSITIVE)},
    "export": {"backend": (True, _of_type(str, name="a backend name")), "options": (False, _OPTIONAL_DICT),
               "agents": (True, _list_of(_of_type(str, name="an agent name"))), "n_calibration": (True, _POSITIVE),
               "action_rate_hz": (True, _number(0, low_open=True))},
}
#: Top-level keys that are not sections: key -> (required, check).
TOP_LEVEL: dict[str, tuple[bool, Callable[[Any], str | None]]] = {
    "env": (True, _of_type(str, name="an environment id")), "seed": (True, _integer(0)), "threads": (False, _POSITIVE),
    "progress": (False, _of_type(bool, name="true or false")),
}
#: Sections that may be ``null`` (the stage is skipped); the others are required.
OPTIONAL_SECTIONS = ("sdn", "conversion", "cvtc", "export")
#: ``convert(method=...)`` values (sb3_snn.conversion.convert).
CONVERSION_METHODS = ("paper", "low_latency")
#: The agent each stage adds to the evaluation and the export.
STAGE_AGENTS = {"sdn": "sdn", "conversion": "converted", "cvtc": "cvtc"}


def _check_names(settings: dict[str, Any], problems: list[str]) -> None:
    """Algorithms, readouts, agents, backends and backend options that must name something that exists."""
    from stable_baselines3 import DQN

    from sb3_snn.common.models import algorithm_table
    from sb3_snn.conversion.simulation import READOUTS
    from sb3_snn.zoo.algos import install_algos

    install_algos()
    algos = algorithm_table()
    section = lambda name: settings[name] if isinstance(settings.get(name), dict) else {}  # noqa: E731
    teacher = section("teacher")
    algo = teacher.get("algo")
    if isinstance(algo, str):
        trainable = sorted(name for name in algos if configs.zoo_config(name) is not None)
        if algo not in algos:
            problems.append(f"teacher.algo: unknown algorithm {algo!r}{_did_you_mean(algo, list(algos))}; "
                            f"known: {', '.join(sorted(algos))}")
        elif not teacher.get("path") and algo not in trainable:
            problems.append(f"teacher.algo: sb3-snn ships no zoo config to train {algo!r}; give teacher.path "
                            f"or one of {', '.join(trainable)}")
    path = teacher.get("path")
    if isinstance(path, str) and not Path(path).expanduser().is_file():
        problems.append(f"teacher.path: file {path!r} not found (relative paths are read from {Path.cwd()})")
    cvtc = section("cvtc")
    if isinstance(cvtc.get("algo"), str):
        q_learners = sorted(name for name, cls in algos.items() if isinstance(cls, type) and issubclass(cls, DQN))
        if cvtc["algo"] not in q_learners:
            problems.append(f"cvtc.algo: {cvtc['algo']!r} cannot train a CVTC Q-network"
                            f"{_did_you_mean(cvtc['algo'], q_learners)}; allowed: {', '.join(q_learners)}")
    method = section("conversion").get("method")
    if isinstance(method, str) and method not in CONVERSION_METHODS:
        problems.append(f"conversion.method: unknown method {method!r}{_did_you_mean(method, list(CONVERSION_METHODS))}; "
                        f"allowed: {', '.join(CONVERSION_METHODS)}")
    readouts = section("conversion").get("readouts")
    for readout in readouts if isinstance(readouts, list) else []:
        if readout not in READOUTS:
            problems.append(f"conversion.readouts: unknown readout {readout!r}{_did_you_mean(readout, list(READOUTS))}; "
                            f"allowed: {', '.join(READOUTS)}")
    export = settings.get("export")
    if isinstance(export, dict):
        _check_export(settings, export, problems)


def _check_export(settings: dict[str, Any], export: dict[str, Any], problems: list[str]) -> None:
    from sb3_snn import backends

    exportable = [agent for stage, agent in STAGE_AGENTS.items() if settings.get(stage)]
    agents = export.get("agents")
    for agent in agents if isinstance(agents, list) else []:
        if agent not in exportable:
            allowed = ", ".join(exportable) or "(none: no spiking stage)"
            problems.append(f"export.agents: {agent!r} is not an exportable agent of this config"
                            f"{_did_you_mean(agent, exportable)}; allowed: {allowed}")
    name = export.get("backend")
    if not isinstance(name, str):
        return
    installed = backends.available()
    if name not in installed and ":" not in name:
        problems.append(f"export.backend: unknown backend {name!r}{_did_you_mean(name, installed)}; "
                        f"installed: {', '.join(installed)}")
        return
    options = export.get("options") or {}
    if not isinstance(options, dict):
        return
    try:
        accepted = backends.load(name).compile_options()
    except Exception as exc:  # a plugin's constructor: reported by name, not a traceback
        problems.append(f"export.backend: backend {name!r} failed to start: {type(exc).__name__}: {exc}")
        return
    unknown = [key for key in options if key not in accepted]
    for key in unknown:
        problems.append(f"export.options.{key}: not an option of backend {name!r}{_did_you_mean(key, accepted)}; "
                        f"its options: {', '.join(accepted)}")
    if not unknown:
        try:
            backends.load(name, **options)
        except (TypeError, ValueError) as exc:
            problems.append(f"export.options: backend {name!r} refuses {options}: {exc}")


def _check_fields(values: dict[str, Any], fields: dict[str, tuple[bool, Callable[[Any], str | None]]], prefix: str,
                  problems: list[str]) -> None:
    """Required keys present, and each present value passing its check (an optional key may be null)."""
    for key, (required, check) in fields.items():
        if key not in values:
            if required:
                problems.append(f"{prefix}{key}: missing (required)")
            continue
        if values[key] is None and not required:
            continue
        problem = check(values[key])
        if problem:
            problems.append(f"{prefix}{key}: {problem}")


def validate_settings(settings: dict[str, Any], source: str = "pipeline settings") -> dict[str, Any]:
    """Check ``settings`` (one environment's section, with ``env`` set) against :data:`SCHEMA`; returns them.

    :param settings: the settings :func:`run_pipeline` would run
    :param source: where they come from, for the message (a file and section)
    :raises PipelineConfigError: one message listing every problem found
    """
    problems: list[str] = []
    if not isinstance(settings, dict):
        raise PipelineConfigError(source, [f"(top level): expected a mapping of settings, found {settings!r}"])
    allowed_top = [*TOP_LEVEL, *SCHEMA]
    for key in settings:
        if key not in allowed_top:
            problems.append(f"{key}: unknown key{_did_you_mean(key, allowed_top)}; allowed: {', '.join(allowed_top)}")
    _check_fields(settings, TOP_LEVEL, "", problems)
    for section, fields in SCHEMA.items():
        value = settings.get(section)
        if value is None:
            if section not in OPTIONAL_SECTIONS:
                problems.append(f"{section}: missing (required section with keys {', '.join(fields)})")
        elif not isinstance(value, dict):
            problems.append(f"{section}: expected a mapping of {', '.join(fields)} (or null), found {value!r}")
        else:
            for key in value:
                if key not in fields:
                    problems.append(f"{section}.{key}: unknown key{_did_you_mean(key, list(fields))}; "
                                    f"allowed: {', '.join(fields)}")
            _check_fields(value, fields, f"{section}.", problems)
    conversion = settings.get("conversion")
    if conversion and "conversion_timesteps" not in (settings.get("evaluation") or {}) and not (
        isinstance(conversion, dict) and "goal" in conversion
    ):
        problems.append("evaluation.conversion_timesteps: missing (required when the conversion stage runs without "
                        "conversion.goal, which picks the smallest T reaching the goal)")
    _check_names(settings, problems)
    if problems:
        raise PipelineConfigError(source, problems)
    return settings


def load_config(env_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """The settings for ``env_id``: the section of ``path`` (default: the embedded ``pipeline.yml``).

    Only the file's shape is read here; :func:`validate_settings` checks the settings (the command
    line may still change them).

    :param env_id: environment id, the section key
    :param path: a pipeline YAML file; its section replaces the embedded one
    :raises FileNotFoundError: no such file
    :raises PipelineConfigError: the file is not a mapping of sections, or has no section for ``env_id``
        (the message lists the sections)
    """
    source = Path(path) if path is not None else configs.config_file("pipeline.yml")
    if not source.is_file():
        raise FileNotFoundError(f"pipeline config {source} not found")
    sections = yaml.safe_load(source.read_text()) or {}
    if not isinstance(sections, dict):
        raise PipelineConfigError(str(source), ["(top level): expected a mapping of environment ids to settings"])
    if env_id not in sections:
        listed = ", ".join(map(str, sections)) or "(none)"
        raise PipelineConfigError(str(source), [f"{env_id}: no section for this environment"
                                                f"{_did_you_mean(env_id, list(sections))}; sections: {listed}"])
    if not isinstance(sections[env_id], dict):
        raise PipelineConfigError(str(source), [f"{env_id}: expected a mapping of settings, found {sections[env_id]!r}"])
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

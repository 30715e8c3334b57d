"""Studies on Optuna's shared storage: the storage itself, the conversion study and grid sweeps.

Storage (:func:`open_storage`):

- a path ending in ``.log`` or ``.journal``: Optuna's journal file (``JournalStorage(JournalFileBackend)``),
  embedded, no server; several processes on one machine (or on a shared file system that supports its lock)
  may use one file;
- a database URL (``postgresql://user@host:5432/db``, ``sqlite:///file.db``): Optuna's ``RDBStorage``; with
  PostgreSQL any number of machines join. Trials there send a heartbeat; a trial whose worker died (no
  heartbeat for ``grace`` seconds) is marked failed by the next worker that starts a trial and queued again
  (``RetryHeartbeatStaleTrialCallback``), so a killed worker's trial or sweep cell is run again.

Every worker creates the study with ``load_if_exists=True`` and then joins it, so workers started one after
another or at the same moment share one study.

The conversion study (:func:`optimize_conversion`) needs no training: each trial converts the source model
with one sampled (percentile, T, readout, rounding) and scores the spiking policy. It has two objectives
(both maximised): the conversion rate (share of steps where the SNN picks the source's action) and the
episode score; SynOps per action and the score's spread are trial user attributes.

A sweep (:func:`run_sweep`) is a grid of envs x methods x seeds from a YAML file; Optuna's ``GridSampler``
hands the cells out, each cell trains with :func:`sb3_snn.zoo.training.train_from_zoo` (resumable: a cell
run again after its worker was killed continues from its last checkpoint) and returns its evaluation
score. :func:`sweep_report` turns the study into one table and one plot.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from sb3_snn.zoo.samplers import SAMPLED_ATTR, merge_policy_kwargs
from sb3_snn.zoo.storage import join_study, open_storage

#: conversion search space used when the command line gives no list
CONVERSION_SPACE: dict[str, list[Any]] = {
    "percentile": [99.0, 99.9, 99.99, 99.999],
    "timesteps": [25, 50, 100, 200, 500],
    "readout": ["robust", "rate", "robust_hidden"],
    "rounding": ["floor", "round"],
}
# -- the conversion study ------------------------------------------------------------------------------------

def conversion_objective(model: Any, env: Any, space: dict[str, list[Any]], calibration_obs: Any,
                         evaluation: dict[str, Any]) -> Callable[[optuna.Trial], tuple[float, float]]:
    """The objective of the conversion study: convert with the sampled settings, evaluate, return
    ``(conversion rate, mean score)``; SynOps per action and the score's spread go to user attributes.

    :param model: the source (teacher) model
    :param env: a single environment of the source's kind
    :param space: candidate values of ``percentile``, ``timesteps``, ``readout``, ``rounding``
    :param calibration_obs: calibration frames (collected once per worker, reused by every trial)
    :param evaluation: keyword arguments of :func:`sb3_snn.conversion.evaluation.evaluate_conversion`
    """
    from sb3_snn.conversion import convert
    from sb3_snn.conversion.evaluation import evaluate_conversion

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        settings = {key: trial.suggest_categorical(key, values) for key, values in space.items()}
        start = time.perf_counter()
        policy = convert(model, calibration_obs=calibration_obs, percentile=settings["percentile"],
                         timesteps=settings["timesteps"], readout=settings["readout"], rounding=settings["rounding"])
        result = evaluate_conversion(policy, model, env, **evaluation)
        trial.set_user_attr("synops_per_action", result.synops_per_action)
        trial.set_user_attr("std_score", result.std_score)
        trial.set_user_attr("n_steps", result.n_steps)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        if result.conversion_rate is None:  # Box actions: fidelity is 1 - the mean |action error| / action range
            return 1.0 - float(result.action_error or 0.0), result.mean_score
        return result.conversion_rate, result.mean_score

    return objective


def conversion_space(timesteps: list[int] | None = None, readout: list[str] | None = None,
                     rounding: list[str] | None = None, percentile: list[float] | None = None) -> dict[str, list[Any]]:
    """The conversion search space: :data:`CONVERSION_SPACE` with any given list in its place."""
    given = {"percentile": percentile, "timesteps": timesteps, "readout": readout, "rounding": rounding}
    return {key: list(given[key] or default) for key, default in CONVERSION_SPACE.items()}


def optimize_conversion(model: Any, env: Any, storage: str, study_name: str, n_trials: int,
                        space: dict[str, list[Any]], n_calibration: int = 2000, evaluation: dict[str, Any] | None = None,
                        seed: int = 0, heartbeat_interval: int = 60) -> optuna.Study:
    """Run ``n_trials`` trials of the conversion study in this process (one worker of possibly many).

    :param model: the source model
    :param env: a single environment for calibration and evaluation
    :param storage: journal path or database URL (:func:`open_storage`)
    :param study_name: the study every worker joins
    :param n_trials: trials this worker runs
    :param space: from :func:`conversion_space`
    :param n_calibration: calibration frames (the source plays, epsilon 0.05, seeded: every worker gets the same)
    :param evaluation: keyword arguments of ``evaluate_conversion`` (``n_episodes``, ``epsilon``, ``seed``, ...)
    :param seed: seed of calibration
    :param heartbeat_interval: seconds between heartbeats (database storages)
    """
    from sb3_snn.conversion.convert import collect_calibration_frames
    from sb3_snn.conversion.extract import extract_network

    study = join_study(open_storage(storage, heartbeat_interval=heartbeat_interval), study_name,
                       optuna.samplers.TPESampler(seed=None), directions=("maximize", "maximize"))
    study.set_metric_names(["conversion_rate", "mean_score"])
    if "kind" not in study.user_attrs:
        study.set_user_attr("kind", "conversion")
        study.set_user_attr("space", space)
    frames = collect_calibration_frames(extract_network(model), env, n_calibration, 0.05, seed)
    objective = conversion_objective(model, env, space, frames, dict(evaluation or {}))
    study.optimize(objective, n_trials=n_trials, gc_after_trial=True)
    return study


def pareto_table(study: optuna.Study) -> str:
    """The conversion study's Pareto front (conversion rate, score) as a text table, with SynOps."""
    header = f"{'trial':>5}  {'percentile':>10}  {'T':>5}  {'readout':<13}  {'rounding':<8}  " \
             f"{'conv. rate':>10}  {'score':>8}  {'SynOps/action':>13}"
    rows = [header]
    for trial in sorted(study.best_trials, key=lambda t: (-t.values[0], -t.values[1])):
        p = trial.params
        rows.append(f"{trial.number:>5}  {p['percentile']:>10}  {p['timesteps']:>5}  {p['readout']:<13}  "
                    f"{p['rounding']:<8}  {trial.values[0]:>10.3f}  {trial.values[1]:>8.1f}  "
                    f"{trial.user_attrs.get('synops_per_action', float('nan')):>13.0f}")
    return "\n".join(rows)


# -- grid sweeps ---------------------------------------------------------------------------------------------

@dataclass
class SweepSpec:
    """A sweep file: envs x methods x seeds, and how long each cell trains.

    :param study: the study name every worker joins
    :param envs: environment ids
    :param methods: method name -> ``{"algo": ..., "conf": zoo config name or path, "hyperparams": {...}}``
    :param seeds: seeds
    :param n_timesteps: steps per cell (``None``: the zoo config's)
    :param eval_episodes: episodes of the final evaluation of each cell
    :param folder: where cells train (relative to the sweep file)
    """

    study: str
    envs: list[str]
    methods: dict[str, dict[str, Any]]
    seeds: list[int]
    n_timesteps: int | None = None
    eval_episodes: int = 10
    folder: Path = field(default_factory=lambda: Path("sweep"))

    @classmethod
    def load(cls, path: str | Path) -> SweepSpec:
        """Read and check a sweep YAML file.

        :param path: the file
        """
        path = Path(path)
        data = yaml.safe_load(path.read_text()) or {}
        missing = [key for key in ("envs", "methods", "seeds") if not data.get(key)]
        if missing:
            raise ValueError(f"{path}: a sweep needs {', '.join(missing)} (see docs/guide_tune.md)")
        unknown = set(data) - {"study", "envs", "methods", "seeds", "n_timesteps", "eval_episodes", "folder"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        methods = {}
        for name, method in dict(data["methods"]).items():
            method = dict(method or {})
            if "algo" not in method:
                raise ValueError(f"{path}: method {name!r} needs an `algo`")
            bad = set(method) - {"algo", "conf", "hyperparams"}
            if bad:
                raise ValueError(f"{path}: method {name!r} has unknown keys {sorted(bad)} (algo, conf, hyperparams)")
            methods[str(name)] = method
        folder = Path(data.get("folder", "sweep"))
        return cls(study=str(data.get("study") or path.stem), envs=[str(e) for e in data["envs"]], methods=methods,
                   seeds=[int(s) for s in data["seeds"]],
                   n_timesteps=int(data["n_timesteps"]) if data.get("n_timesteps") else None,
                   eval_episodes=int(data.get("eval_episodes", 10)),
                   folder=folder if folder.is_absolute() else path.parent / folder)

    def grid(self) -> dict[str, list[Any]]:
        """The ``GridSampler`` search space: one parameter per axis."""
        return {"env": list(self.envs), "method": list(self.methods), "seed": list(self.seeds)}


def zoo_config_path(conf: str | None, algo: str) -> Path:
    from sb3_snn.configs import zoo_config
    from sb3_snn.zoo.algos import default_config

    if conf is None:
        path = default_config(algo)
        if path is None:
            import rl_zoo3

            path = Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"
        return path
    if Path(conf).is_file():
        return Path(conf)
    shipped = zoo_config(Path(conf).stem)
    if shipped is None:
        raise ValueError(f"zoo config {conf!r} is neither a file nor a shipped config")
    return Path(shipped)


def _cell_objective(spec: SweepSpec) -> Callable[[optuna.Trial], float]:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_snn.zoo.training import train_from_zoo

    def objective(trial: optuna.Trial) -> float:
        env_id = trial.suggest_categorical("env", spec.envs)
        method_name = trial.suggest_categorical("method", list(spec.methods))
        seed = trial.suggest_categorical("seed", spec.seeds)
        method = spec.methods[str(method_name)]
        algo = method["algo"]
        config = zoo_config_path(method.get("conf"), algo)
        n_timesteps = spec.n_timesteps
        if n_timesteps is None:
            from sb3_snn.zoo.experiment import read_zoo_yaml

            n_timesteps = int(float(read_zoo_yaml(config)[env_id]["n_timesteps"]))
        folder = spec.folder / str(method_name) / f"{env_id}_seed{seed}"
        trial.set_user_attr("folder", str(folder))
        start = time.perf_counter()
        model = train_from_zoo(algo, str(env_id), folder, config, n_timesteps, seed=int(str(seed)),
                               hyperparams=dict(method.get("hyperparams") or {})).model
        # a fresh env (training closed its own); a frame-stacked (Atari) cell needs the zoo's wrappers: not yet
        env = make_vec_env(str(env_id), n_envs=1, seed=int(str(seed)) + 10_000)
        mean, std = evaluate_policy(model, env, n_eval_episodes=spec.eval_episodes)  # type: ignore[arg-type]
        env.close()
        trial.set_user_attr("std_reward", float(std))  # type: ignore[arg-type]
        trial.set_user_attr("seconds", time.perf_counter() - start)
        return float(mean)  # type: ignore[arg-type]

    return objective


def run_sweep(spec: SweepSpec, storage: str, heartbeat_interval: int = 60, grace: int | None = None) -> optuna.Study:
    """Run cells of ``spec`` until the grid is done (this worker, with however many others share the storage).

    :param spec: the sweep
    :param storage: journal path or database URL (:func:`open_storage`)
    :param heartbeat_interval: seconds between heartbeats (database storages)
    :param grace: seconds without a heartbeat after which a cell counts as lost and is run again
    """
    study = join_study(open_storage(storage, heartbeat_interval=heartbeat_interval, grace=grace), spec.study,
                       optuna.samplers.GridSampler(spec.grid()))
    if "kind" not in study.user_attrs:
        study.set_user_attr("kind", "sweep")
    study.optimize(_cell_objective(spec), gc_after_trial=True)
    return study


def sweep_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per (env, method, seed) cell: the latest complete trial of that cell."""
    cells: dict[tuple[Any, ...], optuna.trial.FrozenTrial] = {}
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        cells[(trial.params["env"], trial.params["method"], trial.params["seed"])] = trial
    return [{"env": env, "method": method, "seed": seed, "score": trial.value,
             "std": trial.user_attrs.get("std_reward"), "seconds": trial.user_attrs.get("seconds"),
             "trial": trial.number} for (env, method, seed), trial in sorted(cells.items(), key=lambda kv: kv[0])]


def sweep_report(spec: SweepSpec, storage: str, output: Path | None = None) -> str:
    """The sweep's table (mean ± std over seeds per env and method, cells done / planned) as text, also
    written with every cell to ``<folder>/report.json`` and plotted to ``<folder>/report.png``.

    :param spec: the sweep
    :param storage: journal path or database URL
    :param output: folder of the report files (default: the sweep's folder)
    """
    import numpy as np

    study = optuna.load_study(storage=open_storage(storage, heartbeat=False), study_name=spec.study)
    rows = sweep_rows(study)
    summary = []
    lines = [f"{'env':<24} {'method':<16} {'score':>18}  cells"]
    for env_id in spec.envs:
        for method in spec.methods:
            scores = [r["score"] for r in rows if r["env"] == env_id and r["method"] == method]
            mean, std = (float(np.mean(scores)), float(np.std(scores))) if scores else (float("nan"), float("nan"))
            summary.append({"env": env_id, "method": method, "mean": mean, "std": std, "cells": len(scores)})
            lines.append(f"{env_id:<24} {method:<16} {mean:>9.1f} ± {std:<6.1f}  {len(scores)}/{len(spec.seeds)}")
    output = Path(output or spec.folder)
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps({"study": spec.study, "summary": summary, "cells": rows,
                                                    "machine": platform.platform()}, indent=2))
    _plot(summary, spec, output / "report.png")
    return "\n".join(lines)


def _plot(summary: list[dict[str, Any]], spec: SweepSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(spec.envs), figsize=(4 * len(spec.envs), 3.2), squeeze=False)
    for ax, env_id in zip(axes[0], spec.envs, strict=True):
        entries = [s for s in summary if s["env"] == env_id]
        x = np.arange(len(entries))
        ax.bar(x, [e["mean"] for e in entries], yerr=[e["std"] for e in entries], capsize=3)
        ax.set_xticks(x, [e["method"] for e in entries], rotation=20)
        ax.set_title(env_id)
        ax.set_ylabel("score (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- best trial -> zoo config --------------------------------------------------------------------------------

def best_zoo_entry(storage: str, study_name: str, config: str | Path, env_id: str,
                   trial_id: int | None = None) -> dict[str, Any]:
    """The zoo config entry of ``env_id`` in ``config`` with the best (or ``trial_id``'s) sampled values in
    place: what to paste into a zoo YAML file. Trials sampled by sb3-snn's samplers carry their values
    (:data:`sb3_snn.zoo.samplers.SAMPLED_ATTR`); for others, the algorithm's rl_zoo3 converter is needed:
    use ``sb3-snn train ... --storage URL --study-name NAME --trial-id N`` instead.

    :param storage: journal path or database URL
    :param study_name: a study of ``sb3-snn train -optimize``
    :param config: the zoo config the study tuned
    :param env_id: the environment's entry in it
    :param trial_id: a trial number (default: the best trial)
    """
    from sb3_snn.zoo.experiment import read_zoo_yaml

    study = optuna.load_study(storage=open_storage(storage, heartbeat=False), study_name=study_name)
    trial = study.best_trial if trial_id is None else study.trials[trial_id]
    if SAMPLED_ATTR not in trial.user_attrs:
        raise ValueError(f"trial {trial.number} of {study_name!r} has no stored sampled values ({SAMPLED_ATTR}): "
                         "it was not sampled by sb3-snn; load it with `sb3-snn train --trial-id`")
    entries = read_zoo_yaml(config)
    if env_id not in entries:
        raise ValueError(f"{config} has no entry for {env_id}")
    entry = dict(entries[env_id])
    sampled = dict(trial.user_attrs[SAMPLED_ATTR])
    if "policy_kwargs" in sampled:
        merged = merge_policy_kwargs(entry.get("policy_kwargs"), sampled.pop("policy_kwargs"))
        entry["policy_kwargs"] = merged if isinstance(merged, str) else f"dict(**{merged!r})"
    entry.update(sampled)
    return entry

"""Training the way ``sb3-snn train`` does, checkpointed and resumable in the same experiment folder.

:class:`ResumableExperimentManager` is rl_zoo3's ``ExperimentManager`` (it reads the zoo config: schedules,
``policy_kwargs``, wrappers, frame stack; builds the envs and the model; writes the zoo's folder layout)
with :mod:`sb3_snn.zoo.checkpoint`'s checkpoints added: model, replay buffer and episode records into
``<experiment folder>/checkpoint/`` every ``checkpoint_freq`` steps. Resuming continues the latest (or a
chosen) experiment folder: the model is built afresh from the same config, the checkpoint's weights,
optimizer, counters and buffer are put into it, the Monitor files are cut back to the checkpoint and
appended to, earlier evaluations are kept, and ``learn(remaining, reset_num_timesteps=False)`` continues
the step count, the exploration schedule and the TensorBoard run. ``sb3-snn train --resume`` and the
pipeline's training stages both train through it.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from sb3_snn.zoo.algos import install_algos
from sb3_snn.zoo.samplers import TuningExperimentManager
from sb3_snn.zoo.checkpoint import (
    CheckpointCallback,
    checkpoint_timesteps,
    restore_checkpoint,
    restore_monitor_files,
)

#: ``resume`` values: never, when the experiment folder has a checkpoint, or fail without one.
RESUME_MODES = ("no", "auto", "required")

#: The checkpoint folder inside an experiment folder.
CHECKPOINT_FOLDER = "checkpoint"


class ResumeError(FileNotFoundError):
    """Nothing to resume: no such experiment folder, or it has no checkpoint."""


def experiment_folder(log_folder: str | Path, algo: str, env_id: str, exp_id: int = 0) -> Path | None:
    """The experiment folder ``<log_folder>/<algo>/<Env>_<N>`` (``exp_id`` 0: the latest), or ``None``.

    :param log_folder: the zoo's log folder (``-f``)
    :param algo: the algorithm id
    :param env_id: the environment id
    :param exp_id: the experiment number ``N`` (0: the highest there is)
    """
    from huggingface_sb3 import EnvironmentName
    from rl_zoo3.utils import get_latest_run_id

    env_name = EnvironmentName(env_id)
    log_path = Path(log_folder) / algo
    number = exp_id if exp_id > 0 else get_latest_run_id(str(log_path) + "/", env_name)
    folder = log_path / f"{env_name}_{number}"
    return folder if number > 0 and folder.is_dir() else None


class ResumableExperimentManager(TuningExperimentManager):  # -optimize: the samplers see the zoo config
    """rl_zoo3's ``ExperimentManager`` with checkpoints, able to continue an experiment folder.

    Takes every argument of ``ExperimentManager`` and:

    :param checkpoint_freq: checkpoint interval in environment steps (``None``: a tenth of the run)
    :param resume: ``"no"``: a new experiment folder; ``"auto"``: continue the experiment folder ``exp_id``
        if it has a checkpoint, else start a new one; ``"required"``: continue it, or fail
    :param exp_id: which experiment folder to continue (0: the latest)
    :raises ResumeError: ``resume="required"`` and there is no such folder or it has no checkpoint
    """

    def __init__(self, *args: Any, checkpoint_freq: int | None = None, resume: str = "no", exp_id: int = 0,
                 **kwargs: Any) -> None:
        if resume not in RESUME_MODES:
            raise ValueError(f"resume={resume!r}; expected one of {', '.join(RESUME_MODES)}")
        super().__init__(*args, **kwargs)
        self.checkpoint_freq = checkpoint_freq
        self.resume_folder: Path | None = None
        self.resumed_from = 0
        if resume == "no":
            return
        folder = experiment_folder(self.log_folder, self.algo, self.env_name.gym_id, exp_id)
        checkpoint = None if folder is None else folder / CHECKPOINT_FOLDER
        if checkpoint is not None and checkpoint_timesteps(checkpoint) > 0:
            self.save_path, self.params_path = str(folder), f"{folder}/{self.env_name}"
            self.resume_folder = checkpoint
        elif resume == "required":
            where = f"{self.log_folder}/{self.algo}/{self.env_name}_{exp_id if exp_id > 0 else '<latest>'}"
            found = "no such experiment folder" if folder is None else f"{folder} has no {CHECKPOINT_FOLDER}/"
            raise ResumeError(f"cannot resume {self.algo} on {self.env_name.gym_id} from {where}: {found} "
                                    f"(checkpoints are written by sb3-snn train every --checkpoint-freq steps)")

    def setup_experiment(self) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        """rl_zoo3's set-up; when resuming, first cut the Monitor files back to the checkpoint, then put the
        checkpoint into the freshly built model and the earlier evaluations into the evaluation callback."""
        if self.resume_folder is not None:
            restore_monitor_files(self.resume_folder, Path(self.save_path))
        result = super().setup_experiment()
        if result is None or self.resume_folder is None:
            return result
        model, saved_hyperparams = result
        self.resumed_from = restore_checkpoint(model, self.resume_folder, self.algo)
        for callback in self.callbacks:
            callback.n_calls = self.resumed_from // model.n_envs  # the evaluation / save grids continue
            if isinstance(callback, EvalCallback):
                self._restore_evaluations(callback)
        return model, saved_hyperparams

    def _restore_evaluations(self, callback: EvalCallback) -> None:
        """The evaluations up to the checkpoint, so that ``evaluations.npz`` keeps them and ``best_model.zip``
        is replaced only by a better one (later evaluations are done again by the resumed run)."""
        path = Path(self.save_path) / "evaluations.npz"
        if not path.is_file():
            return
        with np.load(path, allow_pickle=False) as saved:
            keep = saved["timesteps"] <= self.resumed_from
            callback.evaluations_timesteps = [int(t) for t in saved["timesteps"][keep]]
            callback.evaluations_results = [list(r) for r in saved["results"][keep]]
            callback.evaluations_length = [list(n) for n in saved["ep_lengths"][keep]]
        if callback.evaluations_results:
            callback.best_mean_reward = max(float(np.mean(r)) for r in callback.evaluations_results)

    def create_callbacks(self) -> None:
        """rl_zoo3's callbacks and the checkpoint callback (not while tuning: trials are not resumed)."""
        super().create_callbacks()
        if not self.optimize_hyperparameters:
            every = self.checkpoint_freq or max(int(self.n_timesteps) // 10, 1)
            self.callbacks.append(CheckpointCallback(Path(self.save_path) / CHECKPOINT_FOLDER, every,
                                                     monitor_dir=Path(self.save_path)))

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> Any:
        """rl_zoo3's envs; a resumed run's training envs append to the experiment's Monitor files."""
        if self.resume_folder is None or eval_env or no_log:
            return super().create_envs(n_envs, eval_env, no_log)
        saved = self.monitor_kwargs
        self.monitor_kwargs = {**saved, "override_existing": False}
        try:
            return super().create_envs(n_envs, eval_env, no_log)
        finally:
            self.monitor_kwargs = saved

    def _save_config(self, saved_hyperparams: dict[str, Any]) -> None:
        """rl_zoo3's ``config.yml`` / ``args.yml``; a resumed run keeps those of the run it continues."""
        if self.resume_folder is None:
            super()._save_config(saved_hyperparams)
        else:
            print(f"Resuming {self.save_path} from step {checkpoint_timesteps(self.resume_folder)}")

    def learn(self, model: BaseAlgorithm) -> None:
        """rl_zoo3's ``learn``; a resumed run learns the remaining steps without resetting the step count."""
        if self.resume_folder is None:
            super().learn(model)
            return
        kwargs: dict[str, Any] = {"reset_num_timesteps": False}
        if self.log_interval > -1:  # rl_zoo3's convention: -1 the algorithm's default, < -1 no logging
            kwargs["log_interval"] = self.log_interval
        elif self.log_interval < -1:
            kwargs["log_interval"] = None
        if self.callbacks:
            kwargs["callback"] = self.callbacks
        remaining = int(self.n_timesteps) - model.num_timesteps
        try:
            if remaining > 0:
                model.learn(remaining, **kwargs)
        except KeyboardInterrupt:  # as rl_zoo3: an interrupted run is still saved
            pass
        finally:
            if self.callbacks:
                self.callbacks[0].on_training_end()
            if model.env is not None:
                model.env.close()


@dataclass
class ZooRun:
    """A finished :func:`train_from_zoo` run.

    :param model: the trained model
    :param path: its experiment folder (``<folder>/zoo/<algo>/<Env>_<N>``)
    :param resumed_from: the checkpoint's step count it continued from (0: it started afresh)
    """

    model: BaseAlgorithm
    path: Path
    resumed_from: int


def train_from_zoo(
    algo: str,
    env_id: str,
    folder: Path,
    config: Path,
    n_timesteps: int,
    seed: int = 0,
    hyperparams: dict[str, Any] | None = None,
    tensorboard_log: str = "",
    checkpoint_every: int = 5_000,
    callback: BaseCallback | list[BaseCallback] | None = None,
    device: str = "cpu",
    eval_freq: int = -1,
    eval_episodes: int = 5,
    progress_bar: bool = False,
    log_interval: int = 1,
) -> ZooRun:
    """Train ``algo`` on ``env_id`` with the zoo config ``config``; rerunning after a kill resumes.

    The zoo's folders go under ``folder/zoo/`` (``<algo>/<Env>_<N>/``, its ``checkpoint/`` inside); a
    rerun continues the latest experiment folder from its checkpoint.

    :param algo: a zoo algorithm id, registered ones included (``dqn``, ``ddqn``, ``sdn``, ...)
    :param env_id: the environment id
    :param folder: the stage's folder
    :param config: zoo YAML file
    :param n_timesteps: environment steps of the whole run, across resumptions
    :param seed: seed of the model and environments
    :param hyperparams: overrides of the config's hyperparameters (as ``-params`` would give them)
    :param tensorboard_log: TensorBoard folder ("" for none)
    :param checkpoint_every: checkpoint interval in environment steps
    :param callback: extra callbacks for ``learn``
    :param device: torch device
    :param eval_freq: evaluate every this many steps and keep ``best_model.zip`` (the zoo's EvalCallback); -1: never
    :param eval_episodes: episodes per evaluation
    :param progress_bar: show the zoo's progress bar
    :param log_interval: episodes (off-policy) or rollouts (on-policy) between log lines
    """
    import rl_zoo3.import_envs  # noqa: F401  (Atari and the zoo's other environments)

    install_algos()
    folder = Path(folder)
    params = dict(hyperparams or {})
    args = argparse.Namespace(algo=algo, env=env_id, seed=seed, n_timesteps=n_timesteps, conf_file=str(config),
                              hyperparams=params, env_kwargs=None, trained_agent="")
    manager = ResumableExperimentManager(
        args, algo, env_id, str(folder / "zoo"), tensorboard_log=tensorboard_log, n_timesteps=n_timesteps,
        eval_freq=eval_freq, n_eval_episodes=eval_episodes, hyperparams=params, seed=seed, verbose=0,
        device=device, config=str(config), log_interval=log_interval, show_progress=progress_bar,
        checkpoint_freq=checkpoint_every, resume="auto",
    )
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "zoo.log", "a") as log, contextlib.redirect_stdout(log):  # the zoo prints its settings
        setup = manager.setup_experiment()
    assert setup is not None  # None only when tuning
    model = setup[0]
    if callback is not None:
        manager.callbacks += callback if isinstance(callback, list) else [callback]
    manager.learn(model)
    return ZooRun(model, Path(manager.save_path), manager.resumed_from)

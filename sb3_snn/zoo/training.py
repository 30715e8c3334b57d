"""Training the way ``sb3-snn train`` does, in process, and resumably (used by the pipeline).

rl_zoo3's ``ExperimentManager`` reads the zoo config (schedules, ``policy_kwargs``, wrappers, frame
stack), builds the environments and the model and writes the zoo's folder layout; a resumed run goes
through the zoo's own continue-training path (``trained_agent``). Checkpoints are
:mod:`sb3_snn.zoo.checkpoint`'s.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_snn.zoo.checkpoint import CHECKPOINT, learn_resumable
from sb3_snn.zoo.algos import install_algos


def _manager(algo: str, env_id: str, folder: Path, config: Path, n_timesteps: int, seed: int,
             hyperparams: dict[str, Any], tensorboard_log: str, trained_agent: str, device: str,
             eval_freq: int, eval_episodes: int):
    from rl_zoo3.exp_manager import ExperimentManager

    import rl_zoo3.import_envs  # noqa: F401  (Atari and the zoo's other environments)

    args = argparse.Namespace(algo=algo, env=env_id, seed=seed, n_timesteps=n_timesteps, conf_file=str(config),
                              hyperparams=hyperparams, env_kwargs=None, trained_agent=trained_agent)
    return ExperimentManager(
        args, algo, env_id, str(folder / "zoo"), tensorboard_log=tensorboard_log, n_timesteps=n_timesteps,
        eval_freq=eval_freq, n_eval_episodes=eval_episodes, hyperparams=hyperparams, trained_agent=trained_agent,
        seed=seed, verbose=0,
        device=device, config=str(config),
    )


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
    callback: MaybeCallback = None,
    device: str = "cpu",
    eval_freq: int = -1,
    eval_episodes: int = 5,
    **learn_kwargs: Any,
) -> BaseAlgorithm:
    """Train ``algo`` on ``env_id`` with the zoo config ``config``, checkpointing into ``folder``.

    Rerunning after a kill resumes from the last checkpoint (model and replay buffer).

    :param algo: a zoo algorithm id, registered ones included (``dqn``, ``ddqn``, ``sdn``, ...)
    :param env_id: the environment id
    :param folder: the stage's folder (zoo logs under ``zoo/``, checkpoints under ``checkpoint/``)
    :param config: zoo YAML file
    :param n_timesteps: environment steps of the whole run
    :param seed: seed of the model and environments
    :param hyperparams: overrides of the config's hyperparameters (as ``-params`` would give them)
    :param tensorboard_log: TensorBoard folder ("" for none)
    :param checkpoint_every: checkpoint interval in environment steps
    :param callback: extra callbacks for ``learn``
    :param device: torch device
    :param eval_freq: evaluate every this many steps and keep ``best_model.zip`` (the zoo's EvalCallback);
        -1: never
    :param eval_episodes: episodes per evaluation
    :param learn_kwargs: passed to ``learn`` (``progress_bar``, ``log_interval``)
    """
    install_algos()
    folder = Path(folder)
    checkpoint = folder / "checkpoint" / CHECKPOINT
    # a resumed run goes through the zoo's own continue-training path, which loads the checkpoint
    manager = _manager(algo, env_id, folder, config, n_timesteps, seed, dict(hyperparams or {}), tensorboard_log,
                       str(checkpoint) if checkpoint.is_file() else "", device, eval_freq, eval_episodes)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "zoo.log", "a") as log, contextlib.redirect_stdout(log):  # the zoo prints its settings
        model, _ = manager.setup_experiment()
    callbacks = list(manager.callbacks) + ([callback] if callback is not None else [])
    return learn_resumable(lambda: model, lambda _: model, n_timesteps, folder / "checkpoint", checkpoint_every,
                           callback=callbacks, **learn_kwargs)

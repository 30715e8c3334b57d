"""Training a pipeline stage the way ``sb3-snn train`` does, in process, and resumably.

rl_zoo3's ``ExperimentManager`` reads the zoo config (schedules, ``policy_kwargs``, wrappers, frame
stack), builds the environments and the model and writes the zoo's folder layout; a resumed run goes
through the zoo's own continue-training path (``trained_agent``). Checkpoints are
:mod:`sb3_snn.pipeline.checkpoint`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_snn.pipeline.checkpoint import learn_resumable
from sb3_snn.zoo.algos import install_algos


def _manager(algo: str, env_id: str, folder: Path, config: Path, n_timesteps: int, seed: int,
             hyperparams: dict[str, Any], tensorboard_log: str, trained_agent: str, device: str):
    from rl_zoo3.exp_manager import ExperimentManager

    import rl_zoo3.import_envs  # noqa: F401  (Atari and the zoo's other environments)

    args = argparse.Namespace(algo=algo, env=env_id, seed=seed, n_timesteps=n_timesteps, conf_file=str(config),
                              hyperparams=hyperparams, env_kwargs=None, trained_agent=trained_agent)
    return ExperimentManager(
        args, algo, env_id, str(folder / "zoo"), tensorboard_log=tensorboard_log, n_timesteps=n_timesteps,
        eval_freq=-1, hyperparams=hyperparams, trained_agent=trained_agent, seed=seed, verbose=0,
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
    """
    install_algos()
    folder = Path(folder)
    overrides = dict(hyperparams or {})

    def make_model() -> BaseAlgorithm:
        model, _ = _manager(algo, env_id, folder, config, n_timesteps, seed, overrides, tensorboard_log, "",
                            device).setup_experiment()
        return model

    def load_model(path: Path) -> BaseAlgorithm:
        model, _ = _manager(algo, env_id, folder, config, n_timesteps, seed, overrides, tensorboard_log, str(path),
                            device).setup_experiment()
        return model

    return learn_resumable(make_model, load_model, n_timesteps, folder / "checkpoint", checkpoint_every,
                           callback=callback)

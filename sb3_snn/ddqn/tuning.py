"""DDQN's hyperparameter sampler for rl_zoo3's ``-optimize``: DQN's search space.

DDQN takes exactly DQN's arguments and changes only the target, so rl_zoo3's DQN sampler is the right
space. :class:`sb3_snn.DDQN` exposes it as ``hyperparameter_sampler``; :mod:`sb3_snn.zoo.samplers`
installs it into ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER``.
"""

from __future__ import annotations

from typing import Any


def sample_ddqn_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """rl_zoo3's ``sample_dqn_params`` (gamma, batch size, learning rate, train frequency and gradient steps,
    exploration, target update interval, ``net_arch``), with rl_zoo3's sampler signature.

    :param trial: an Optuna trial
    :param n_actions: size of the action space
    :param n_envs: number of environments
    :param additional_args: rl_zoo3's extra arguments (HER replay buffer settings)
    """
    from rl_zoo3.hyperparams_opt import sample_dqn_params  # rl_zoo3 only when tuning

    return sample_dqn_params(trial, n_actions, n_envs, {"using_her_replay_buffer": False, "her_kwargs": {},
                                                        **additional_args})

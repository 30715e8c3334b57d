"""``convert()``: a trained SB3 Q-learning model -> :class:`ConvertedQPolicy` (Tan et al. 2021), or the
deterministic actor of a TD3 / DDPG / SAC model -> :class:`ConvertedActorPolicy`.

1. read the ReLU network behind the model (:mod:`sb3_snn.conversion.extract`);
2. collect calibration frames by letting the model play with epsilon = 0.05 (unless given);
3. ``lambda_l`` = global p-th percentile of layer ``l``'s activations; ``w_l <- w_l lambda_{l-1} /
   lambda_l``, ``b_l <- b_l / lambda_l`` (Rueckauer et al. 2017);
4. run the result as IF neurons (threshold 1, reset by subtraction) for ``T`` steps.

A continuous actor's output layer is left unnormalised (``lambda_L = 1``): its robust readout is its
time-averaged input current, which needs no range, so the readout is the actor's pre-activation itself
and the teacher's ``tanh`` and rescaling apply to it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.observations import check_finite, collect_observations
from sb3_snn.conversion.extract import SourceNetwork, extract_network
from sb3_snn.conversion.normalisation import normalise_layers, percentile_scales
from sb3_snn.conversion.policies import ConvertedActorPolicy, ConvertedQPolicy, layer_spec


def collect_calibration_frames(
    source: SourceNetwork, env: gym.Env | VecEnv, n_frames: int, epsilon: float = 0.05, seed: int | None = None
) -> np.ndarray:
    """Observations seen while the source network plays epsilon-greedily
    (:func:`sb3_snn.common.observations.collect_observations`).

    :param source: the extracted network (acts greedily on its own Q-values, or with its deterministic
        action for a continuous actor: :meth:`SourceNetwork.act`)
    :param env: environment (a ``VecEnv`` or a single ``gym.Env``)
    :param n_frames: number of observations to return
    :param epsilon: probability of a uniformly random action
    :param seed: seeds the environment and the epsilon draws
    """
    return collect_observations(env, n_frames, source.act, epsilon=epsilon, seed=seed)


def _calibration_obs(
    model: Any, source: SourceNetwork, env: gym.Env | VecEnv | None, n_calibration: int, epsilon: float,
    seed: int | None,
) -> np.ndarray:
    """Calibration frames played by ``source`` in ``env`` (default: the model's env), spaces checked."""
    if n_calibration < 1:
        raise ValueError(f"n_calibration must be at least 1 (frames to calibrate on), got {n_calibration}")
    if env is None:
        env = model.get_env() if hasattr(model, "get_env") else None
    if env is None:
        raise ValueError("convert() needs calibration_obs or an env (the model has none) to collect frames in")
    env_space = env.observation_space
    if getattr(env_space, "shape", None) != source.observation_space.shape or type(env_space) is not type(
            source.observation_space):
        raise ValueError(
            f"observation space mismatch: the model ({type(model).__name__}) was trained on {source.observation_space}, "
            f"the env given has {env_space}; pass the environment the model was trained on"
        )
    return collect_calibration_frames(source, env, n_calibration, epsilon, seed)


def convert(
    model: Any,
    env: gym.Env | VecEnv | None = None,
    calibration_obs: np.ndarray | th.Tensor | None = None,
    percentile: float = 99.9,
    timesteps: int = 500,
    readout: str = "robust",
    n_calibration: int = 2000,
    epsilon: float = 0.05,
    seed: int | None = 0,
    threshold: float = 1.0,
    batch_size: int = 256,
    device: th.device | str = "cpu",
    rounding: str = "floor",
    carry_over: bool = False,
) -> ConvertedQPolicy:
    """Convert a trained DQN / DDQN / QR-DQN (or a discrete actor, or the actor of TD3 / DDPG / SAC) to an
    integrate-and-fire policy.

    :param model: an SB3 model or policy (see :func:`sb3_snn.conversion.extract.extract_network`)
    :param env: environment to collect calibration frames in (default: the model's own env)
    :param calibration_obs: raw observations to calibrate on instead of playing
        (``[n, *obs_shape]``, channel-last images allowed)
    :param percentile: ``p`` of the per-layer global percentile normalisation (99.9 - 99.99 is best)
    :param timesteps: simulation steps per action ``T``
    :param readout: ``"robust"`` (rate + leftover potential, the paper's), ``"rate"`` or ``"robust_hidden"``
        (not the paper's: also passes the last hidden layer's leftover potential on, see
        :class:`ConvertedQPolicy`); a continuous actor needs a signed one (not ``"rate"``)
    :param n_calibration: number of frames collected when ``calibration_obs`` is not given
    :param epsilon: exploration while collecting calibration frames
    :param seed: seed of the calibration run
    :param threshold: ``V_thr`` of every neuron
    :param batch_size: calibration frames per forward pass
    :param device: device of the returned policy
    :param rounding: ``"floor"`` (the paper's neurons) or ``"round"`` (hidden neurons get ``V_thr / (2T)``
        of extra bias per step, so their spike counts round instead of flooring; see
        :class:`ConvertedQPolicy`)
    :param carry_over: hidden membranes persist between actions (``predict(obs, state, episode_start)``,
        see :class:`ConvertedQPolicy`; not the paper's)
    :return: a :class:`ConvertedQPolicy` (``Discrete`` actions) or a :class:`ConvertedActorPolicy` (``Box``)
    """
    source = extract_network(model)
    if source.squash is not None and readout == "rate":
        raise ValueError("a continuous actor needs a signed readout ('robust' or 'robust_hidden'), not 'rate'")
    raw = _calibration_obs(model, source, env, n_calibration, epsilon, seed) if calibration_obs is None else calibration_obs
    n_samples = len(raw)
    if n_samples == 0:
        raise ValueError("calibration_obs is empty")
    check_finite(raw.cpu().numpy() if isinstance(raw, th.Tensor) else np.asarray(raw), "calibration_obs")

    def batches() -> Iterator[th.Tensor]:
        for start in range(0, n_samples, batch_size):
            chunk = raw[start : start + batch_size]
            yield source.preprocess(chunk.cpu().numpy() if isinstance(chunk, th.Tensor) else np.asarray(chunk))

    scales = percentile_scales(source.layers, batches, n_samples, percentile)  # lambda_l, p-th percentile
    if source.squash is not None:
        scales[-1] = 1.0  # the readout is the pre-activation itself (module docstring)
    normalise_layers(source.layers, scales)
    if threshold != 1.0:  # currents in units of V_thr, so that rates stay a / lambda
        with th.no_grad():
            for layer in source.layers:
                for param in layer.parameters():
                    param.mul_(threshold)
    settings: dict[str, Any] = dict(
        layer_specs=[layer_spec(layer) for layer in source.layers],
        layer_names=source.names,
        timesteps=timesteps,
        readout=readout,
        threshold=threshold,
        rounding=rounding,
        scales=scales,
        normalize_images=source.normalize_images,
        metadata={
            "source": type(model).__name__, "source_kind": source.kind, "percentile": percentile,
            "n_calibration": n_samples, "calibration_epsilon": epsilon,
        },
        carry_over=carry_over,
    )
    policy: ConvertedQPolicy
    if isinstance(source.action_space, spaces.Box):
        policy = ConvertedActorPolicy(source.observation_space, source.action_space, squash=source.squash or "tanh",
                                      **settings)
    else:
        policy = ConvertedQPolicy(source.observation_space, source.action_space, **settings)
    with th.no_grad():
        for target, layer in zip(policy.layers, source.layers, strict=True):
            for name, value in layer.state_dict().items():
                getattr(target, name).copy_(value)
    return policy.to(device)

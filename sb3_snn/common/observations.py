"""Observations: collected by playing, and turned into what a network's first layer takes.

- :func:`collect_observations`: raw observations seen while an agent plays epsilon-greedily (or at
  random), the calibration and example data of conversion, export and the pipeline;
- :func:`preprocess_observations`: SB3's preprocessing of a raw batch (channel-last images transposed,
  images divided by 255, float);
- :func:`network_input`: a policy's own input (``preprocess`` of a spiking policy, SB3's otherwise);
- :func:`description_input`: raw numpy observations -> the input of a spiking description, as float64
  numpy (through the policy when there is one);
- :func:`check_finite`: refuse a batch holding NaN or infinite values (calibration data, inputs one wants
  checked; SB3's ``predict`` itself does not check, and sb3-snn's policies keep that behaviour).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import maybe_transpose, preprocess_obs
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_snn.spiking.contract import is_spiking_policy
from sb3_snn.spiking.description import SpikingDescription


def as_vec_env(env: gym.Env | VecEnv) -> VecEnv:
    """``env`` itself if it is a ``VecEnv``, else a one-env ``DummyVecEnv`` around it.

    :param env: a gymnasium env or a vectorised one
    """
    return env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])


def collect_observations(
    env: gym.Env | VecEnv,
    n: int,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    epsilon: float = 0.0,
    seed: int | None = None,
) -> np.ndarray:
    """``n`` raw observations seen while ``act`` plays epsilon-greedily (every env of a ``VecEnv``).

    Each step first draws the random actions, then whether to take them (one draw per env): with
    ``act=None`` every action is random. Random actions are uniform over a ``Discrete`` space (drawn from
    the seeded generator), else ``action_space.sample()`` of the space seeded with ``seed``.

    :param env: the environment (reset first; with ``seed``, seeded first)
    :param n: observations to return
    :param act: greedy actions ``[n_envs]`` of a batch of raw observations (see
        :func:`sb3_snn.common.models.greedy_actions`); ``None``: random actions
    :param epsilon: probability of a random action instead of ``act``'s
    :param seed: seeds the environment, the random actions and the epsilon draws (``None``: unseeded)
    :return: ``[n, *observation_shape]`` as the environment gives them
    """
    venv = as_vec_env(env)
    rng = np.random.default_rng(seed)
    discrete = isinstance(venv.action_space, spaces.Discrete)
    if seed is not None:
        venv.seed(seed)
        if not discrete:
            venv.action_space.seed(seed)
    obs: Any = venv.reset()
    frames: list[np.ndarray] = []
    count = 0
    while count < n:
        frames.append(np.array(obs))
        count += len(obs)
        if discrete:
            random = rng.integers(int(venv.action_space.n), size=len(obs))  # type: ignore[attr-defined]
        else:
            random = np.stack([venv.action_space.sample() for _ in range(len(obs))])
        if act is None:
            actions = random
        else:
            greedy = np.asarray(act(obs)).reshape(random.shape)
            explore = rng.random(len(obs)) < epsilon  # epsilon-greedy
            actions = np.where(explore.reshape(-1, *([1] * (random.ndim - 1))), random, greedy)
        obs, _, _, _ = venv.step(actions)
    return np.concatenate(frames)[:n]


def check_finite(obs: np.ndarray | th.Tensor, what: str = "observations") -> None:
    """Raise unless every value of the batch ``obs`` is finite.

    A NaN or an infinity in calibration data makes every percentile and scale computed from it NaN or
    infinite, silently; in an input, the action is arbitrary. ``predict`` keeps SB3's behaviour (no check),
    so call this where the data comes from outside.

    :param obs: a batch ``[n, ...]`` (a single observation counts as one row)
    :param what: what the batch is, for the message
    :raises ValueError: how many rows (of how many) hold NaN or infinite values, and the first of them
    """
    array = obs.detach().cpu().numpy() if isinstance(obs, th.Tensor) else np.asarray(obs)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.integer):
        return
    rows = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(1, -1)
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if bad.size:
        first = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise ValueError(f"{what}: {bad.size} of {len(rows)} rows hold NaN or infinite values (rows {first}); "
                         "expected finite numbers")


def preprocess_observations(
    obs: np.ndarray | th.Tensor, observation_space: spaces.Space, normalize_images: bool, device: th.device | str = "cpu"
) -> th.Tensor:
    """A batch of raw observations (channel-last images allowed) as the float input SB3's networks take.

    :param obs: ``[batch, *shape]``
    :param observation_space: the space they come from
    :param normalize_images: divide image observations by 255
    :param device: torch device of the result
    """
    if isinstance(obs, np.ndarray):
        obs = maybe_transpose(obs, observation_space)
    tensor = th.as_tensor(obs, device=device)
    return _float(preprocess_obs(tensor, observation_space, normalize_images=normalize_images))


def network_input(policy: Any, obs: np.ndarray | th.Tensor) -> th.Tensor:
    """What ``policy``'s network takes for a batch of raw observations: a spiking policy's ``preprocess``
    (the input of its spiking description), SB3's preprocessing for any other policy.

    :param policy: an SB3 policy (spiking or not)
    :param obs: a batch of raw observations (numpy as the environment gives them, or a tensor)
    """
    tensor: Any
    if isinstance(obs, th.Tensor):
        tensor = obs
    elif callable(getattr(policy, "obs_to_tensor", None)):
        tensor, _ = policy.obs_to_tensor(obs)
    else:
        tensor = th.as_tensor(obs)
    if is_spiking_policy(policy):
        return policy.preprocess(tensor)
    return _float(preprocess_obs(tensor, policy.observation_space, normalize_images=getattr(policy, "normalize_images", True)))


def _float(preprocessed: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
    """A preprocessed observation batch as float (a Dict observation space has no single network input)."""
    if not isinstance(preprocessed, th.Tensor):
        raise TypeError("a Dict observation space has no single network input; give a Box or Discrete space")
    return preprocessed.float()


def description_input(
    description: SpikingDescription, policy: Any | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from raw numpy observations to the input of ``description`` (float64 numpy).

    With a policy, its :func:`network_input`; for a bare description, the observations times
    ``description.metadata["input_scale"]`` (1 when absent: the scale a description records for images).

    :param description: the network
    :param policy: the policy it describes, if there is one
    """
    if policy is not None:
        def through_policy(obs: np.ndarray) -> np.ndarray:
            with th.no_grad():
                return network_input(policy, obs).double().cpu().numpy()

        return through_policy
    scale = float(description.metadata.get("input_scale", 1.0))
    return lambda obs: np.asarray(obs, dtype=np.float64) * scale

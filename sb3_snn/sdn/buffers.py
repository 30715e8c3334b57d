"""A replay pool of observations only: distillation needs no actions, rewards or next observations.

Half the memory of SB3's ``ReplayBuffer`` on images (no ``next_observations``), and it takes the
same constructor and ``add`` arguments, so it plugs into ``OffPolicyAlgorithm`` unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.vec_env import VecNormalize


class ObservationSamples(NamedTuple):
    """A batch of stored observations (raw, as the environment produced them)."""

    observations: th.Tensor


class ObservationBuffer(BaseBuffer):
    """Circular storage of observations.

    :param buffer_size: capacity in steps (each step stores ``n_envs`` observations)
    :param observation_space: ``Box``, ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` (stored raw, as SB3's
        ``ReplayBuffer`` stores them: a ``Discrete`` observation as shape ``(1,)``)
    :param action_space: action space (unused; kept for SB3's constructor signature)
    :param device: where sampled batches go
    :param n_envs: number of parallel environments
    :param kwargs: accepted and ignored (``optimize_memory_usage``, ``handle_timeout_termination``)
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        **kwargs: Any,
    ) -> None:
        stored = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
        if not isinstance(observation_space, stored):
            raise ValueError(f"ObservationBuffer does not store {type(observation_space).__name__} observations "
                             f"({observation_space}); supported: Box, Discrete, MultiDiscrete, MultiBinary")
        super().__init__(max(buffer_size // n_envs, 1), observation_space, action_space, device, n_envs=n_envs)
        self.observations = np.zeros((self.buffer_size, self.n_envs, *self.obs_shape), dtype=observation_space.dtype)

    def add_observations(self, obs: np.ndarray) -> None:
        """Store one step's observations ``[n_envs, *obs_shape]``."""
        self.observations[self.pos] = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """SB3's ``ReplayBuffer.add`` signature; only ``obs`` is kept."""
        self.add_observations(obs)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ObservationSamples:
        """A uniform batch of stored observations.

        :param batch_size: number of observations
        :param env: a ``VecNormalize`` to normalise them with, if any
        """
        upper = self.buffer_size if self.full else self.pos
        if upper == 0:
            raise RuntimeError("the observation buffer is empty")
        steps = np.random.randint(0, upper, size=batch_size)
        envs = np.random.randint(0, self.n_envs, size=batch_size)
        return self._get_samples((steps, envs), env)

    # samples of observations only (SB3's sample types carry actions and rewards too)
    def _get_samples(  # type: ignore[override]
        self, batch_inds: Any, env: VecNormalize | None = None,
    ) -> ObservationSamples:
        steps, envs = batch_inds
        obs = cast(np.ndarray, self._normalize_obs(self.observations[steps, envs], env))  # not a Dict space: one array
        return ObservationSamples(self.to_torch(obs))

    def stored(self) -> int:
        """Number of observations stored (all environments)."""
        return self.size() * self.n_envs

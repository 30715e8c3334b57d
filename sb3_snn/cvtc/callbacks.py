"""TensorBoard figures of a CVTC Q-network during training."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, cast

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

if TYPE_CHECKING:
    from sb3_snn.cvtc.policies import CVTCPolicy


class CVTCStatsCallback(BaseCallback):
    """Every ``log_freq`` environment steps, record :meth:`CVTCPolicy.spike_stats
    <sb3_snn.cvtc.policies.CVTCPolicy.spike_stats>` on a replay-buffer batch (or the latest
    observations before the buffer fills): ``cvtc/output_spike_time``, ``cvtc/beta_only_share``,
    ``cvtc/q_gap_mostafa``, ``cvtc/action_agreement_mostafa``.

    Does nothing (one warning) when the policy is not a CVTC policy, so a config can keep it for
    baseline runs. In a zoo config: ``callback: sb3_snn.cvtc.callbacks.CVTCStatsCallback``.

    :param log_freq: environment steps between two records
    :param batch_size: observations per record
    :param verbose: verbosity
    """

    def __init__(self, log_freq: int = 1000, batch_size: int = 256, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.log_freq, self.batch_size = int(log_freq), int(batch_size)
        self._active = True

    def _on_training_start(self) -> None:
        if not hasattr(self.model.policy, "spike_stats"):
            warnings.warn(f"CVTCStatsCallback: {type(self.model.policy).__name__} is not a CVTC policy; logging nothing",
                          stacklevel=2)
            self._active = False

    def _batch(self) -> th.Tensor:
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is not None and buffer.size() > 0:
            n = buffer.size() * buffer.n_envs
            observations = buffer.observations[: buffer.size()].reshape(n, *buffer.obs_shape)
            rows = np.random.default_rng(self.num_timesteps).choice(n, size=min(n, self.batch_size), replace=False)
            observations = observations[rows]
        else:
            observations = np.asarray(self.locals["new_obs"])
        return th.as_tensor(observations, dtype=th.float32, device=self.model.device)

    def _on_step(self) -> bool:
        if self._active and self.n_calls % self.log_freq == 0:
            policy = cast("CVTCPolicy", self.model.policy)  # checked in _on_training_start
            for key, value in policy.spike_stats(self._batch()).items():
                self.logger.record(key, value)
        return True

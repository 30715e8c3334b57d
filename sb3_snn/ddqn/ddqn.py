"""Double DQN (van Hasselt, Guez & Silver, 2016) as a drop-in subclass of SB3's ``DQN``.

The only change to DQN is the bootstrap target: the online network picks the next action and the
target network values it, which removes the max-operator's overestimation bias.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import MaybeCallback
from torch.nn import functional as F

from sb3_snn.common.safe_zip import SafeLoadMixin

from sb3_snn.ddqn.tuning import sample_ddqn_params

SelfDDQN = TypeVar("SelfDDQN", bound="DDQN")


def double_q_target(
    next_q_online: th.Tensor,
    next_q_target: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
) -> th.Tensor:
    """The Double DQN bootstrap target.

    y = r + (1 - done) * gamma * Q_target(s', argmax_a Q_online(s', a))

    :param next_q_online: online network's Q-values on the next observations, ``[batch, n_actions]``
    :param next_q_target: target network's Q-values on the next observations, ``[batch, n_actions]``
    :param rewards: ``[batch, 1]``
    :param dones: ``[batch, 1]``, 1 where the episode terminated
    :param discounts: ``gamma`` (or ``gamma**n`` per sample for n-step returns), scalar or ``[batch, 1]``
    :return: targets, ``[batch, 1]``
    """
    next_actions = next_q_online.argmax(dim=1, keepdim=True)
    next_values = th.gather(next_q_target, dim=1, index=next_actions)
    return rewards + (1 - dones) * discounts * next_values


class DDQN(SafeLoadMixin, DQN):
    """Double Deep Q-Network: SB3's ``DQN`` with the Double-DQN target (:func:`double_q_target`).

    Takes exactly the arguments of :class:`stable_baselines3.DQN`. A policy may add a term to the
    loss by defining ``auxiliary_loss() -> Tensor`` (CVTC's weight-sum regulariser does).
    """

    #: rl_zoo3 ``-optimize`` search space (DQN's), installed by :mod:`sb3_snn.zoo.samplers`
    hyperparameter_sampler = staticmethod(sample_ddqn_params)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Run ``gradient_steps`` Double-DQN updates on batches from the replay buffer."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        auxiliary_loss = getattr(self.policy, "auxiliary_loss", None)

        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                target_q_values = double_q_target(
                    self.q_net(replay_data.next_observations),
                    self.q_net_target(replay_data.next_observations),
                    replay_data.rewards,
                    replay_data.dones,
                    discounts,
                )
            current_q_values = th.gather(self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            if auxiliary_loss is not None:
                loss = loss + auxiliary_loss()
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def learn(
        self: SelfDDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "DDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfDDQN:
        """Train as ``DQN.learn`` does, logging to TensorBoard under ``DDQN``."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

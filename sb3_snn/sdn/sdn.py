"""SDN (Zhang et al., arXiv 2108.10078): a spiking student distilled from a trained teacher.

The student acts greedily in the environment; what it observes goes into a replay pool (rewards are
ignored); once the pool holds ``learning_starts`` steps, every ``train_freq`` steps ``gradient_steps``
batches are drawn, the teacher labels them and the student takes a gradient step on the
distillation loss (:mod:`sb3_snn.sdn.losses`) by backpropagation through time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_snn.sdn.buffers import ObservationBuffer
from sb3_snn.sdn.distillation import DistillationCallback, record_statistics
from sb3_snn.sdn.policies import SDNCnnPolicy, SDNPolicy

SelfSDN = TypeVar("SelfSDN", bound="SDN")


class SDN(OffPolicyAlgorithm):
    """Spiking Distillation Network: train a spiking student from a teacher's outputs, no reward.

    :param policy: ``"SDNPolicy"``, ``"SDNCnnPolicy"`` or a policy class
    :param env: the student's environment (build it like the teacher's: same wrappers, frame stack)
    :param teacher: shortcut for ``learn(callback=DistillationCallback(teacher, ...))``: a trained model or
        a path to its zip
    :param temperature: distillation temperature (with ``teacher=``)
    :param alpha: weight of the soft term (with ``teacher=``)
    :param distillation_loss: loss name (with ``teacher=``), see :data:`sb3_snn.sdn.losses.LOSSES`
    :param learning_rate: student learning rate (constant or schedule)
    :param buffer_size: observations kept in the replay pool
    :param learning_starts: environment steps before the first update
    :param batch_size: observations per gradient step
    :param train_freq: environment steps between updates
    :param gradient_steps: updates each time
    :param exploration_rate: probability of a random action while collecting (0: the student acts greedily)
    :param max_grad_norm: gradient clipping
    :param replay_buffer_class: pool class (default :class:`ObservationBuffer`)
    :param replay_buffer_kwargs: its extra arguments
    :param optimize_memory_usage: passed to the pool (ignored by :class:`ObservationBuffer`)
    :param stats_window_size: episodes averaged for the rollout statistics
    :param tensorboard_log: TensorBoard folder
    :param policy_kwargs: student policy arguments (layers, threshold, decay, n_steps, encoding, ...)
    :param verbose: verbosity
    :param seed: random seed
    :param device: torch device of the student
    :param _init_setup_model: build the networks now
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "SDNPolicy": SDNPolicy, "SDNCnnPolicy": SDNCnnPolicy, "MlpPolicy": SDNPolicy, "CnnPolicy": SDNCnnPolicy,
    }
    policy: SDNPolicy

    def __init__(
        self,
        policy: str | type[SDNPolicy],
        env: GymEnv | str,
        teacher: BaseAlgorithm | str | Path | None = None,
        temperature: float = 2.0,
        alpha: float = 0.9,
        distillation_loss: str = "soft_hard_ce",
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 1000,
        batch_size: int = 64,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        exploration_rate: float = 0.0,
        max_grad_norm: float = 10.0,
        replay_buffer_class: type | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate, buffer_size, learning_starts, batch_size, tau=1.0, gamma=0.99,
            train_freq=train_freq, gradient_steps=gradient_steps, action_noise=None,
            replay_buffer_class=replay_buffer_class or ObservationBuffer, replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, device=device,
            seed=seed, sde_support=False, supported_action_spaces=(spaces.Discrete,), support_multi_env=True,
        )
        self.exploration_rate, self.max_grad_norm = exploration_rate, max_grad_norm
        self.temperature, self.alpha, self.distillation_loss = temperature, alpha, distillation_loss
        self.teacher_path = str(teacher) if isinstance(teacher, (str, Path)) else None
        self.distillation: DistillationCallback | None = None
        if _init_setup_model:
            self._setup_model()
        if teacher is not None:
            self.attach_teacher(DistillationCallback(teacher, temperature, alpha, distillation_loss))

    def attach_teacher(self, distillation: DistillationCallback) -> None:
        """Distil from ``distillation``'s teacher from now on (checks the spaces match).

        :param distillation: the callback holding the teacher and the loss settings
        """
        if getattr(self, "policy", None) is not None:
            distillation.bind(self.policy)
        self.distillation = distillation

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "distillation"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The student's greedy action (a random one with probability ``exploration_rate`` when not deterministic)."""
        if not deterministic and self.exploration_rate > 0 and np.random.rand() < self.exploration_rate:
            n_batch = observation.shape[0] if self.policy.is_vectorized_observation(observation) else None
            if n_batch is None:
                return np.array(self.action_space.sample()), state
            return np.array([self.action_space.sample() for _ in range(n_batch)]), state
        return self.policy.predict(observation, state, episode_start, deterministic)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Run ``gradient_steps`` distillation updates on batches from the replay pool."""
        if self.distillation is None:
            if self.teacher_path is None:
                raise RuntimeError(
                    "SDN has no teacher: pass SDN(..., teacher=model_or_path) or "
                    "learn(..., callback=DistillationCallback(teacher))"
                )
            self.attach_teacher(DistillationCallback(self.teacher_path, self.temperature, self.alpha, self.distillation_loss))
        assert self.distillation is not None
        self.distillation.max_grad_norm = self.max_grad_norm
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        stats = [
            self.distillation.distill(self.policy, self.replay_buffer.sample(batch_size, env=self._vec_normalize_env).observations)  # type: ignore[union-attr]
            for _ in range(gradient_steps)
        ]
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        record_statistics(self.logger, stats, self.policy, prefix="distill")

    def learn(
        self: SelfSDN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SDN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSDN:
        """Collect with the student and distil; a :class:`DistillationCallback` in ``callback`` attaches its teacher."""
        return super().learn(
            total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
            tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar,
        )

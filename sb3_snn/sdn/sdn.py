"""SDN (Zhang et al., arXiv 2108.10078): a spiking student distilled from a trained teacher.

The student acts greedily in the environment (discrete actions), or takes its deterministic action
squashed into a Box action space (continuous actions: a SAC, TD3, DDPG, PPO or A2C teacher), after
``learning_starts`` steps of uniformly random actions (SB3's off-policy warm-up; the first batch drawn from
them also sets the student's input standardisation and calibration); what it
observes goes into a replay pool (rewards are ignored); once the pool holds ``learning_starts`` steps,
every ``train_freq`` steps ``gradient_steps`` batches are drawn, the teacher labels them and the
student takes a gradient step on the distillation loss (:mod:`sb3_snn.sdn.losses`) by backpropagation
through time, in :meth:`SDN.train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule

from sb3_snn.common.safe_zip import SafeLoadMixin
from sb3_snn.sdn.buffers import ObservationBuffer
from sb3_snn.sdn.losses import (
    DEFAULT_ALPHA, DEFAULT_TEMPERATURE, check_settings, distillation_step, record_statistics, resolve_loss,
)
from sb3_snn.sdn.policies import SDNCnnPolicy, SDNPolicy
from sb3_snn.sdn.teachers import Teacher, as_teacher
from sb3_snn.sdn.tuning import sample_sdn_params

SelfSDN = TypeVar("SelfSDN", bound="SDN")

#: Default learning rate: 3e-3 decaying linearly to 0 over the ``learn`` call (SB3's ``LinearSchedule``).
DEFAULT_LEARNING_RATE = LinearSchedule(3e-3, 0.0, 1.0)


class SDN(SafeLoadMixin, OffPolicyAlgorithm):
    """Spiking Distillation Network: train a spiking student from a teacher's outputs, no reward.

    :param policy: ``"SDNPolicy"``, ``"SDNCnnPolicy"`` or a policy class
    :param env: the student's environment (build it like the teacher's: same wrappers, frame stack)
    :param teacher: the trained model to distil (or a path to its zip); also attached later by
        :meth:`attach_teacher` (``learn(callback=DistillationCallback(teacher))`` calls it)
    :param temperature: distillation temperature
    :param alpha: weight of the soft term
    :param distillation_loss: loss name, see :data:`sb3_snn.sdn.losses.LOSSES` (discrete actions) and
        :data:`~sb3_snn.sdn.losses.BOX_LOSSES` (Box actions); ``None``: ``"soft_hard_ce"`` for discrete
        actions, ``"mse_action"`` for Box actions (``"mse_presquash"`` with a PPO / A2C teacher's ``clip``)
    :param learning_rate: student learning rate (constant or schedule; default :data:`DEFAULT_LEARNING_RATE`)
    :param buffer_size: observations kept in the replay pool
    :param learning_starts: environment steps before the first update
    :param batch_size: observations per gradient step
    :param train_freq: environment steps between updates
    :param gradient_steps: updates each time
    :param exploration_rate: probability of a random action while collecting (0: the student acts greedily)
    :param max_grad_norm: gradient clipping
    :param calibrate_rate: before the first update, scale the student's hidden layers to this firing rate
        on the first batch (see ``SpikingStudent.calibrate``); ``None`` or 0 to skip
    :param replay_buffer_class: pool class (default :class:`ObservationBuffer`)
    :param replay_buffer_kwargs: its extra arguments
    :param optimize_memory_usage: passed to the pool (ignored by :class:`ObservationBuffer`)
    :param stats_window_size: episodes averaged for the rollout statistics
    :param tensorboard_log: TensorBoard folder
    :param policy_kwargs: student policy arguments (layers, threshold, decay, n_steps, encoding, ...); with a
        Box action space and a teacher given here, ``squash`` defaults to the teacher's
    :param verbose: verbosity
    :param seed: random seed
    :param device: torch device of the student
    :param _init_setup_model: build the networks now
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "SDNPolicy": SDNPolicy, "SDNCnnPolicy": SDNCnnPolicy, "MlpPolicy": SDNPolicy, "CnnPolicy": SDNCnnPolicy,
    }
    policy: SDNPolicy
    #: rl_zoo3 ``-optimize`` search space (distillation settings, width, steps, tdBN), installed by
    #: :mod:`sb3_snn.zoo.samplers`
    hyperparameter_sampler = staticmethod(sample_sdn_params)

    def __init__(
        self,
        policy: str | type[SDNPolicy],
        env: GymEnv | str,
        teacher: BaseAlgorithm | str | Path | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        alpha: float = DEFAULT_ALPHA,
        distillation_loss: str | None = None,
        learning_rate: float | Schedule = DEFAULT_LEARNING_RATE,
        buffer_size: int = 100_000,
        learning_starts: int = 500,
        batch_size: int = 256,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        exploration_rate: float = 0.0,
        max_grad_norm: float = 10.0,
        calibrate_rate: float | None = 0.1,
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
            seed=seed, sde_support=False, supported_action_spaces=(spaces.Discrete, spaces.Box), support_multi_env=True,
        )
        check_settings(distillation_loss, temperature, alpha)
        self.exploration_rate, self.max_grad_norm = exploration_rate, max_grad_norm
        self.temperature, self.alpha, self.distillation_loss = temperature, alpha, distillation_loss
        self.calibrate_rate = calibrate_rate
        self.teacher_path = str(teacher) if isinstance(teacher, (str, Path)) else None
        self.teacher: Teacher | None = None
        found = None if teacher is None else as_teacher(teacher)
        if found is not None and self.observation_space is not None:  # before the student is built for the teacher
            found.check_compatible(self.observation_space, self.action_space)
        if found is not None and found.squash is not None and "squash" not in self.policy_kwargs:
            self.policy_kwargs = {**self.policy_kwargs, "squash": found.squash}  # a Box student squashes as its teacher
        if _init_setup_model:
            self._setup_model()
        if found is not None:
            self.attach_teacher(found)

    def attach_teacher(
        self,
        teacher: Teacher | BaseAlgorithm | str | Path,
        temperature: float | None = None,
        alpha: float | None = None,
        loss: str | None = None,
        calibrate_rate: float | None = None,
    ) -> None:
        """Distil from ``teacher`` from now on (checks that its spaces match the student's).

        :param teacher: a trained model, a path to its zip, or a :class:`~sb3_snn.sdn.teachers.Teacher`
        :param temperature: replaces the distillation temperature (unchanged if ``None``)
        :param alpha: replaces the weight of the soft term (unchanged if ``None``)
        :param loss: replaces the loss name (unchanged if ``None``)
        :param calibrate_rate: replaces the calibration firing rate (unchanged if ``None``)
        """
        settings = (
            self.distillation_loss if loss is None else loss,
            self.temperature if temperature is None else float(temperature),
            self.alpha if alpha is None else float(alpha),
        )
        check_settings(*settings)
        found = as_teacher(teacher)
        if getattr(self, "policy", None) is not None:
            found.check_compatible(self.policy.observation_space, self.policy.action_space, self.policy.squash)
        self.distillation_loss, self.temperature, self.alpha = settings
        if getattr(self, "policy", None) is not None:  # refuse a loss of the other kind of action space now
            resolve_loss(self.distillation_loss, self.policy.continuous, self.policy.squash)
        if calibrate_rate is not None:
            self.calibrate_rate = calibrate_rate
        self.teacher = found

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "teacher"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The student's action: greedy, or squashed into a Box action space (a random one with probability
        ``exploration_rate`` when not deterministic)."""
        if not deterministic and self.exploration_rate > 0 and np.random.rand() < self.exploration_rate:
            vectorized = self.policy.is_vectorized_observation(observation)
            n_batch = cast(np.ndarray, observation).shape[0] if vectorized else None  # Box observations
            if n_batch is None:
                return np.array(self.action_space.sample()), state
            return np.array([self.action_space.sample() for _ in range(n_batch)]), state
        return self.policy.predict(observation, state, episode_start, deterministic)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Run ``gradient_steps`` distillation updates on batches from the replay pool.

        Each update: the teacher labels a batch of the student's observations, and the student takes one
        step on the distillation loss (backpropagation through time, gradients clipped to ``max_grad_norm``),
        see :func:`~sb3_snn.sdn.losses.distillation_step`.
        """
        if self.teacher is None:
            if self.teacher_path is None:
                raise RuntimeError(
                    "SDN has no teacher: pass SDN(..., teacher=model_or_path) or "
                    "learn(..., callback=DistillationCallback(teacher))"
                )
            self.attach_teacher(self.teacher_path)
        assert self.teacher is not None
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        stats = []
        for _ in range(gradient_steps):
            observations = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env).observations  # type: ignore[union-attr]
            stats.append(distillation_step(
                self.policy, self.teacher, observations, self.loss_name, self.temperature, self.alpha,
                self.max_grad_norm, self.calibrate_rate,
            ))
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        record_statistics(self.logger, stats, self.policy, prefix="distill")

    @property
    def loss_name(self) -> str:
        """The distillation loss in use (``distillation_loss``, or the action space's default when ``None``)."""
        return resolve_loss(self.distillation_loss, self.policy.continuous, self.policy.squash)

    def learn(
        self: SelfSDN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SDN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSDN:
        """Collect with the student and distil; a :class:`~sb3_snn.sdn.distillation.DistillationCallback` in
        ``callback`` attaches its teacher (through :meth:`attach_teacher`)."""
        return super().learn(
            total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
            tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar,
        )

"""``DistillationCallback``: online distillation, a student trained from a teacher that is learning.

- **online**: ``teacher.learn(n, callback=DistillationCallback(student=sdn_or_policy))``. The callback
  keeps its own pool of the teacher's observations (``new_obs`` of every rollout step) and trains the
  student every ``train_freq`` steps while the teacher learns (:func:`~sb3_snn.sdn.losses.distillation_step`).
- **offline** (the paper) is :class:`~sb3_snn.sdn.sdn.SDN`'s own training: ``SDN(..., teacher=model)``.
  As a shortcut, ``SDN(...).learn(n, callback=DistillationCallback(teacher))`` hands the teacher and the
  loss settings to the model it is attached to (any model with an ``attach_teacher`` method) and does
  nothing else; SDN's ``train`` then takes the gradient steps.
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from sb3_snn.sdn.buffers import ObservationBuffer
from sb3_snn.sdn.losses import (
    DEFAULT_ALPHA, DEFAULT_TEMPERATURE, check_settings, distillation_step, record_statistics, resolve_loss,
)
from sb3_snn.sdn.policies import SDNPolicy
from sb3_snn.sdn.teachers import Teacher, as_teacher


class DistillationCallback(BaseCallback):
    """Distil a teacher into a spiking student (see the module docstring for the two modes).

    :param teacher: a trained SB3 model, a path to its zip, or ``None`` (online mode: the model the
        callback is attached to is the teacher)
    :param temperature: distillation temperature ``T``; ``None``: offline, the student's own setting
        (``SDN(temperature=...)``), online :data:`~sb3_snn.sdn.losses.DEFAULT_TEMPERATURE`
    :param alpha: weight of the soft term (``1 - alpha`` goes to the hard term); ``None``: offline, the
        student's own setting, online :data:`~sb3_snn.sdn.losses.DEFAULT_ALPHA`
    :param loss: one of :data:`sb3_snn.sdn.losses.LOSSES` (discrete actions) or
        :data:`~sb3_snn.sdn.losses.BOX_LOSSES` (Box actions); ``None``: the action space's default
        (offline mode: the student's own setting)
    :param student: online mode only: an ``SDN`` model or an :class:`SDNPolicy` to train
    :param buffer_size: online mode: observations kept in the callback's pool
    :param learning_starts: online mode: observations stored before the first student update
    :param batch_size: online mode: batch size of a student update
    :param train_freq: online mode: environment steps (callback calls) between student updates
    :param gradient_steps: online mode: student updates each time
    :param max_grad_norm: online mode: gradient clipping of the student's updates (offline, SDN's own
        ``max_grad_norm`` applies)
    :param calibrate_rate: before the first update, scale the student's hidden layers to this firing
        rate on the first batch (see ``SpikingStudent.calibrate``); ``None`` or 0 to skip
    :param verbose: verbosity
    """

    def __init__(
        self,
        teacher: BaseAlgorithm | Teacher | str | None = None,
        temperature: float | None = None,
        alpha: float | None = None,
        loss: str | None = None,
        student: Any = None,
        buffer_size: int = 10_000,
        learning_starts: int = 500,
        batch_size: int = 64,
        train_freq: int = 4,
        gradient_steps: int = 1,
        max_grad_norm: float = 10.0,
        calibrate_rate: float | None = 0.1,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        check_settings(loss, DEFAULT_TEMPERATURE if temperature is None else temperature,
                       DEFAULT_ALPHA if alpha is None else alpha)
        self.teacher = None if teacher is None else as_teacher(teacher)
        self.temperature = None if temperature is None else float(temperature)
        self.alpha = None if alpha is None else float(alpha)
        self.loss = loss
        self.student = student
        self.buffer_size, self.learning_starts, self.batch_size = buffer_size, learning_starts, batch_size
        self.train_freq, self.gradient_steps, self.max_grad_norm = train_freq, gradient_steps, max_grad_norm
        self.calibrate_rate = calibrate_rate
        self.pool: ObservationBuffer | None = None
        self.n_updates = 0
        if student is not None and self.teacher is not None:
            policy = self.student_policy
            self.teacher.check_compatible(policy.observation_space, policy.action_space, policy.squash)

    @property
    def student_policy(self) -> SDNPolicy:
        """The policy trained in online mode."""
        policy = getattr(self.student, "policy", self.student)
        if not isinstance(policy, SDNPolicy):
            raise TypeError(f"the student must be an SDN model or an SDNPolicy, got {type(self.student).__name__}")
        return policy

    def _init_callback(self) -> None:
        attach_teacher = getattr(self.model, "attach_teacher", None)
        if callable(attach_teacher):  # offline: the model (SDN) distils in its own train()
            if self.teacher is None:
                raise ValueError(f"DistillationCallback attached to {type(self.model).__name__} needs a teacher")
            attach_teacher(self.teacher, temperature=self.temperature, alpha=self.alpha, loss=self.loss,
                           calibrate_rate=self.calibrate_rate or 0.0)  # 0: skip, as None here
            return
        if self.student is None:
            raise ValueError("online distillation: give DistillationCallback(student=...) the SDN or SDNPolicy to train")
        if self.teacher is None:
            self.teacher = Teacher(self.model)
        policy = self.student_policy
        self.teacher.check_compatible(policy.observation_space, policy.action_space, policy.squash)
        self.pool = ObservationBuffer(
            self.buffer_size, policy.observation_space, policy.action_space, device=policy.device, n_envs=self.model.n_envs
        )

    def _on_step(self) -> bool:
        if self.pool is None:  # offline mode: nothing to do per step
            return True
        self.pool.add_observations(self.locals["new_obs"])
        if self.pool.stored() >= self.learning_starts and self.n_calls % self.train_freq == 0:
            policy = self.student_policy
            policy.set_training_mode(True)
            stats = [self.distill(policy, self.pool.sample(self.batch_size).observations) for _ in range(self.gradient_steps)]
            self.n_updates += self.gradient_steps
            record_statistics(self.logger, stats, policy, prefix="distill")
            self.logger.record("distill/n_updates", self.n_updates, exclude="tensorboard")
        return True

    def distill(self, policy: SDNPolicy, observations: th.Tensor) -> dict[str, float]:
        """One gradient step of ``policy`` towards the teacher on a batch of raw observations
        (:func:`~sb3_snn.sdn.losses.distillation_step` with this callback's settings).

        :param policy: the student
        :param observations: ``[batch, *obs_shape]`` as the environment produced them
        :return: the loss parts and the teacher-student action agreement on the batch
        """
        assert self.teacher is not None
        loss = resolve_loss(self.loss, policy.continuous, policy.squash)
        temperature = DEFAULT_TEMPERATURE if self.temperature is None else self.temperature
        alpha = DEFAULT_ALPHA if self.alpha is None else self.alpha
        return distillation_step(policy, self.teacher, observations, loss, temperature, alpha,
                                 self.max_grad_norm, self.calibrate_rate)

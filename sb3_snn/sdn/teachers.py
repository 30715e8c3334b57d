"""Teacher adapters: the action scores of any trained SB3 model with a ``Discrete`` or ``Box`` action space.

- DQN and ``sb3_snn.DDQN``: the Q-values of the online network;
- QR-DQN: the mean of the quantiles (its Q-values);
- PPO, A2C (any ``ActorCriticPolicy``): the logits of the categorical action distribution, or with a ``Box``
  action space the Gaussian mean (SB3's deterministic action before it clips it to the bounds);
- SAC, TD3, DDPG (``Box`` actions): the deterministic action before its ``tanh`` (SAC's Gaussian mean, TD3's
  ``mu`` without its final ``tanh``); :attr:`Teacher.squash` says how the action follows from it.

Which network acts, its scores and loading a zip are :mod:`sb3_snn.common.models`; this module adds
what distillation needs on top (the space checks, the acting-only size).

The teacher sees the observation as it was trained (stacked frames as channels, its own
preprocessing inside its networks); the student sees the same raw observation its own way.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_snn.common.models import acting_network, acting_scores, action_squash, load_model
from sb3_snn.common.safe_zip import saved_spaces

#: What a teacher's acting network may be (:func:`sb3_snn.common.models.acting_network`'s kinds).
TEACHER_KINDS = {"q": "DQN / DDQN", "quantile": "QR-DQN", "actor": "PPO / A2C",
                 "deterministic_actor": "SAC / TD3 / DDPG"}
#: Action spaces a teacher may have.
TEACHER_ACTION_SPACES = (spaces.Discrete, spaces.Box)


class TeacherMismatchError(ValueError):
    """The teacher's observation or action space does not match the student's."""


class Teacher:
    """A trained model wrapped to give action scores ``[batch, n_actions]`` for raw observations.

    :param model: a trained SB3 model: DQN, DDQN, QR-DQN, PPO or A2C with a ``Discrete`` action space, or
        SAC, TD3, DDPG, PPO or A2C with a ``Box`` action space
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        if not isinstance(model.action_space, TEACHER_ACTION_SPACES):
            raise TeacherMismatchError(
                f"distillation needs a teacher with Discrete or Box actions, got {type(model).__name__} with "
                f"{type(model.action_space).__name__} actions {model.action_space}"
            )
        self.model = model
        self.policy = model.policy
        self.kind = acting_network(model).kind
        continuous = isinstance(model.action_space, spaces.Box)
        if self.kind not in TEACHER_KINDS or (self.kind in ("q", "quantile") and continuous):
            raise TypeError(
                f"unsupported teacher {type(model).__name__} with policy {type(model.policy).__name__}; "
                "expected DQN, DDQN, QR-DQN, PPO or A2C (Discrete actions), or SAC, TD3, DDPG, PPO or A2C (Box actions)"
            )
        #: how the teacher's scores become its Box actions (``"tanh"`` or ``"clip"``); ``None`` when discrete
        self.squash = action_squash(model)

    @property
    def observation_space(self) -> spaces.Space:
        """The observation space the teacher was trained on."""
        return self.model.observation_space

    @property
    def n_actions(self) -> int:
        """Number of discrete actions, or of Box action dimensions (the scores per observation)."""
        if isinstance(self.model.action_space, spaces.Box):
            return int(np.prod(self.model.action_space.shape))
        return int(cast(spaces.Discrete, self.model.action_space).n)  # checked in __init__

    def parameter_bytes(self, acting_only: bool = True) -> int:
        """Bytes of the teacher's parameters.

        :param acting_only: count only what computes the action (the online Q-network; the actor of
            an actor-critic, features included), not target networks or critics
        """
        return sum(p.numel() * p.element_size() for p in self.acting_parameters(acting_only))

    def acting_parameters(self, acting_only: bool = True) -> list[th.nn.Parameter]:
        """The parameters counted by :meth:`parameter_bytes` (:func:`sb3_snn.common.models.acting_network`).

        :param acting_only: only those of the network that acts (else every parameter of the policy)
        """
        if not acting_only:
            return list(self.policy.parameters())
        return acting_network(self.model).parameters()

    def logits(self, obs: th.Tensor) -> th.Tensor:
        """Action scores for raw (unpreprocessed) observations, on the device of ``obs``
        (:func:`sb3_snn.common.models.acting_scores`).

        :param obs: a batch of raw observations
        """
        return acting_scores(self.model, obs)

    def check_compatible(
        self, observation_space: spaces.Space, action_space: spaces.Space, squash: str | None = None,
    ) -> None:
        """Raise :class:`TeacherMismatchError` unless a student with these spaces can learn from the teacher.

        :param observation_space: the student's
        :param action_space: the student's: the teacher's kind (Discrete with as many actions, or a Box of the
            same shape and bounds)
        :param squash: the student's squash (Box actions): must be the teacher's (:attr:`squash`)
        """
        teacher_obs = self.observation_space
        if getattr(teacher_obs, "shape", None) != getattr(observation_space, "shape", None):
            raise TeacherMismatchError(
                f"teacher ({type(self.model).__name__}) observation space {teacher_obs} does not match the "
                f"student's {observation_space}: build the student's environment like the teacher's "
                "(same wrappers, frame stack, image transpose)"
            )
        teacher_actions = self.model.action_space
        if isinstance(teacher_actions, spaces.Box):
            same = (isinstance(action_space, spaces.Box) and action_space.shape == teacher_actions.shape
                    and np.allclose(action_space.low, teacher_actions.low)
                    and np.allclose(action_space.high, teacher_actions.high))
            if not same:
                raise TeacherMismatchError(
                    f"teacher ({type(self.model).__name__}) action space {teacher_actions} does not match the "
                    f"student's {action_space} (a Box student needs the same shape and bounds)"
                )
            if squash is not None and squash != self.squash:
                raise TeacherMismatchError(
                    f"teacher ({type(self.model).__name__}) squashes its actions with {self.squash!r}, the student "
                    f"with {squash!r}: build the student with policy_kwargs=dict(squash={self.squash!r})"
                )
            return
        if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != self.n_actions:
            raise TeacherMismatchError(
                f"teacher ({type(self.model).__name__}) action space {self.model.action_space} does not match "
                f"the student's {action_space}"
            )


def load_teacher(path: str | Path, device: th.device | str = "cpu", trusted: bool = False) -> BaseAlgorithm:
    """Load a teacher zip, the algorithm inferred from the saved policy class
    (:func:`sb3_snn.common.models.load_model`: a DDQN teacher loads as DQN, which acts the same), without
    running code from the file unless ``trusted``.

    :param path: the ``.zip`` written by ``model.save`` (or rl_zoo3)
    :param device: torch device of the teacher
    :param trusted: load with SB3's own loader (it unpickles the file: only for files you trust)
    :raises TeacherMismatchError: the zip's action space is neither ``Discrete`` nor ``Box`` (read before
        anything is built)
    """
    if not trusted:
        _, action_space, policy_class = saved_spaces(path)
        if not isinstance(action_space, TEACHER_ACTION_SPACES):
            raise TeacherMismatchError(
                f"teacher {path}: distillation needs Discrete or Box actions, got {type(action_space).__name__} "
                f"{action_space} (policy {policy_class.__name__}); expected a DQN, DDQN, QR-DQN, PPO or A2C teacher "
                "(Discrete), or a SAC, TD3, DDPG, PPO or A2C teacher (Box)"
            )
    return load_model(path, device=device, trusted=trusted)


def as_teacher(
    teacher: Teacher | BaseAlgorithm | str | Path, device: th.device | str = "cpu", trusted: bool = False
) -> Teacher:
    """Wrap a model, a zip path or an existing :class:`Teacher`.

    :param teacher: what to wrap
    :param device: device a teacher loaded from a path is put on
    :param trusted: a path is loaded with SB3's own loader (see :func:`load_teacher`)
    """
    if isinstance(teacher, Teacher):
        return teacher
    if isinstance(teacher, (str, Path)):
        teacher = load_teacher(teacher, device=device, trusted=trusted)
    if not isinstance(teacher, BaseAlgorithm):
        raise TypeError(f"a teacher is an SB3 model or a path to its zip, got {type(teacher).__name__}")
    return Teacher(teacher)

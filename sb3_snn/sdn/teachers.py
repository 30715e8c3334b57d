"""Teacher adapters: the action scores of any trained SB3 model with a ``Discrete`` action space.

- DQN and ``sb3_snn.DDQN``: the Q-values of the online network;
- QR-DQN: the mean of the quantiles (its Q-values);
- PPO, A2C (any ``ActorCriticPolicy``): the logits of the categorical action distribution.

The teacher sees the observation as it was trained (stacked frames as channels, its own
preprocessing inside its networks); the student sees the same raw observation its own way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.dqn.policies import DQNPolicy



class TeacherMismatchError(ValueError):
    """The teacher's observation or action space does not match the student's."""


class Teacher:
    """A trained model wrapped to give action scores ``[batch, n_actions]`` for raw observations.

    :param model: a trained SB3 model (DQN, DDQN, QR-DQN, PPO, A2C) with a ``Discrete`` action space
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        if not isinstance(model.action_space, spaces.Discrete):
            raise TeacherMismatchError(f"the teacher must have a Discrete action space, got {model.action_space}")
        self.model = model
        self.policy = model.policy
        self.kind = _kind(model)

    @property
    def observation_space(self) -> spaces.Space:
        """The observation space the teacher was trained on."""
        return self.model.observation_space

    @property
    def n_actions(self) -> int:
        """Number of discrete actions."""
        return int(self.model.action_space.n)

    def parameter_bytes(self, acting_only: bool = True) -> int:
        """Bytes of the teacher's parameters.

        :param acting_only: count only what computes the action (the online Q-network; the actor of
            an actor-critic, features included), not target networks or critics
        """
        return sum(p.numel() * p.element_size() for p in self.acting_parameters(acting_only))

    def acting_parameters(self, acting_only: bool = True) -> list[th.nn.Parameter]:
        """The parameters counted by :meth:`parameter_bytes`."""
        if not acting_only:
            return list(self.policy.parameters())
        if self.kind == "qrdqn":
            return list(self.policy.quantile_net.parameters())
        if self.kind == "q":
            return list(self.policy.q_net.parameters())
        policy = self.policy
        modules = [policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net]
        return [p for module in modules for p in module.parameters()]

    @th.no_grad()
    def logits(self, obs: th.Tensor) -> th.Tensor:
        """Action scores for raw (unpreprocessed) observations, on the device of ``obs``."""
        self.policy.set_training_mode(False)
        x = obs.to(self.model.device)
        if self.kind == "q":
            scores = self.policy.q_net(x)
        elif self.kind == "qrdqn":
            scores = self.policy.quantile_net(x).mean(dim=1)  # [batch, n_quantiles, n_actions] -> Q
        else:
            scores = self.policy.get_distribution(x).distribution.logits
        return scores.float().to(obs.device)

    def check_compatible(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise :class:`TeacherMismatchError` unless a student with these spaces can learn from the teacher."""
        teacher_obs = self.observation_space
        if getattr(teacher_obs, "shape", None) != getattr(observation_space, "shape", None):
            raise TeacherMismatchError(
                f"teacher ({type(self.model).__name__}) observation space {teacher_obs} does not match the "
                f"student's {observation_space}: build the student's environment like the teacher's "
                "(same wrappers, frame stack, image transpose)"
            )
        if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != self.n_actions:
            raise TeacherMismatchError(
                f"teacher ({type(self.model).__name__}) action space {self.model.action_space} does not match "
                f"the student's {action_space}"
            )


def _kind(model: BaseAlgorithm) -> str:
    from sb3_contrib.qrdqn.policies import QRDQNPolicy

    if isinstance(model.policy, QRDQNPolicy):
        return "qrdqn"
    if isinstance(model.policy, DQNPolicy):
        return "q"
    if isinstance(model.policy, ActorCriticPolicy):
        return "actor_critic"
    raise TypeError(
        f"unsupported teacher {type(model).__name__} with policy {type(model.policy).__name__}; "
        "expected DQN, DDQN, QR-DQN, PPO or A2C"
    )


def resolve_path(path: str | Path) -> Path:
    """A teacher zip path as given (relative to the working directory), with or without ``.zip``.

    :param path: the teacher's zip
    """
    candidate = Path(path).expanduser()
    for option in (candidate, candidate.with_suffix(".zip")):
        if option.is_file():
            return option
    raise FileNotFoundError(f"teacher checkpoint {str(path)!r} not found (relative paths are read from {Path.cwd()})")


def load_teacher(path: str | Path, device: th.device | str = "cpu") -> BaseAlgorithm:
    """Load a teacher zip, choosing the algorithm class from the saved policy class.

    :param path: the ``.zip`` written by ``model.save`` (or rl_zoo3)
    :param device: torch device of the teacher
    """
    from sb3_contrib import QRDQN
    from sb3_contrib.qrdqn.policies import QRDQNPolicy
    from stable_baselines3 import A2C, DQN, PPO

    resolved = resolve_path(path)
    data, _, _ = load_from_zip_file(resolved, device="cpu", load_data=True)
    policy_class = data.get("policy_class") if data else None
    algo: Any
    if isinstance(policy_class, type) and issubclass(policy_class, QRDQNPolicy):
        algo = QRDQN
    elif isinstance(policy_class, type) and issubclass(policy_class, DQNPolicy):
        algo = DQN  # DDQN differs only in training; its zip loads as DQN for inference
    elif isinstance(policy_class, type) and issubclass(policy_class, ActorCriticPolicy):
        algo = PPO if "clip_range" in data else A2C
    else:
        raise TypeError(f"{resolved}: cannot tell which algorithm saved it (policy class {policy_class!r})")
    return algo.load(resolved, device=device, custom_objects={"lr_schedule": lambda _: 0.0, "learning_rate": 0.0})


def as_teacher(teacher: Teacher | BaseAlgorithm | str | Path, device: th.device | str = "cpu") -> Teacher:
    """Wrap a model, a zip path or an existing :class:`Teacher`.

    :param teacher: what to wrap
    :param device: device a teacher loaded from a path is put on
    """
    if isinstance(teacher, Teacher):
        return teacher
    if isinstance(teacher, (str, Path)):
        teacher = load_teacher(teacher, device=device)
    if not isinstance(teacher, BaseAlgorithm):
        raise TypeError(f"a teacher is an SB3 model or a path to its zip, got {type(teacher).__name__}")
    return Teacher(teacher)

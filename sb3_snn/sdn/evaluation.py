"""Agreement of a student with its teacher on the teacher's own states.

A student acts on the states it visits, so agreement measured while the student plays (the
:class:`~sb3_snn.common.evaluation.Agreement` hook on its own episodes) depends on where the student goes:
a student that drives the system into easy states scores high, one that wanders into states the teacher
never sees is judged there. The fair measure of imitation is the share of the *teacher's* states (the
teacher playing greedily, or with a small epsilon) on which the student takes the teacher's action:
:func:`teacher_states` collects them (seed them apart from the student's training environment, so they are
held out) and :func:`agreement_on_states` scores a student on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.models import greedy_actions
from sb3_snn.common.observations import collect_observations
from sb3_snn.sdn.teachers import Teacher, as_teacher


def teacher_states(
    teacher: Teacher | BaseAlgorithm | str | Path,
    env: gym.Env | VecEnv,
    n: int = 2000,
    epsilon: float = 0.05,
    seed: int | None = 10_000,
) -> np.ndarray:
    """``n`` raw observations visited by the teacher acting epsilon-greedily
    (:func:`sb3_snn.common.observations.collect_observations`).

    :param teacher: a trained model, a path to its zip, or a :class:`~sb3_snn.sdn.teachers.Teacher`
    :param env: an environment built like the teacher's (wrappers, frame stack)
    :param n: observations to collect
    :param epsilon: probability of a uniformly random action instead of the teacher's (0: greedy)
    :param seed: seeds the environment and the random draws; use one the student did not train on
    :return: ``[n, *observation_shape]``
    """
    if n < 1:
        raise ValueError(f"teacher_states: n (observations to collect) must be at least 1, got {n}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"teacher_states: epsilon must lie in [0, 1], got {epsilon}")
    found = as_teacher(teacher)
    return collect_observations(env, n, greedy_actions(found.model), epsilon=epsilon, seed=seed)[:n]


def agreement_on_states(
    student: Any, teacher: Teacher | BaseAlgorithm | str | Path, observations: np.ndarray, batch_size: int = 4096
) -> float:
    """Share of ``observations`` on which the student's greedy action is the teacher's (Discrete actions).

    :param student: anything with SB3's ``predict`` (an ``SDN`` model, a policy), or a function from a batch
        of raw observations to actions
    :param teacher: the teacher (a model, a zip path or a :class:`~sb3_snn.sdn.teachers.Teacher`); its
        greedy action is the argmax of its scores (:meth:`Teacher.logits`)
    :param observations: raw observations ``[n, *observation_shape]``, e.g. from :func:`teacher_states`
    :param batch_size: observations per call
    """
    found = as_teacher(teacher)
    if found.squash is not None:
        raise ValueError(
            "agreement_on_states compares discrete actions; the teacher has a Box action space "
            "(use sb3_snn.common.evaluation.ActionError)"
        )
    observations = np.asarray(observations)
    if len(observations) == 0:
        raise ValueError("agreement_on_states: no observations given")
    act = greedy_actions(student)
    matches = 0
    for start in range(0, len(observations), batch_size):
        batch = observations[start : start + batch_size]
        with th.no_grad():
            reference = found.logits(th.as_tensor(batch, device=found.model.device)).argmax(dim=1).cpu().numpy()
        matches += int((np.asarray(act(batch)).reshape(-1) == reference).sum())
    return matches / len(observations)

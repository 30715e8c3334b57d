"""SDN students for continuous actions: teachers with Box actions (SAC, TD3, DDPG, PPO), the squash, the loss,
the spiking description's squashed readout, and distillation that brings the student's actions to the teacher's.

Tiny untrained teachers on Pendulum-v1 (their actor weights scaled up so that their actions vary across
observations and reach the bounds); the whole module runs in well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_snn import SDN, DistillationCallback, SDNPolicy
from sb3_snn.common.models import acting_network, acting_scores, action_squash, load_model, parameter_bytes
from sb3_snn.sdn import Teacher, load_teacher
from sb3_snn.sdn.teachers import TeacherMismatchError
from sb3_snn.spiking import simulate
from sb3_snn.spiking.simulate import squash_outputs

ENV = "Pendulum-v1"


def _pendulum_obs(n: int) -> np.ndarray:
    """Start states of Pendulum-v1 (cos, sin of any angle; angular velocity in [-1, 1]): on its state manifold."""
    env = gym.make(ENV)
    return np.stack([env.reset(seed=seed)[0] for seed in range(n)]).astype(np.float32)


OBS = _pendulum_obs(64)


def tiny() -> dict:
    """Small settings (a fresh dict each time: SB3 adds keys to ``policy_kwargs``)."""
    return dict(policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")


def _teacher(algo: type[BaseAlgorithm]) -> BaseAlgorithm:
    th.manual_seed(0)
    if algo is PPO:
        model = PPO("MlpPolicy", ENV, n_steps=64, batch_size=32, **tiny())
        with th.no_grad():
            model.policy.action_net.weight.mul_(1000.0)  # SB3 initialises it with gain 0.01; the clip then acts
        return model
    model = algo("MlpPolicy", ENV, learning_starts=10**6, buffer_size=100, **tiny())
    with th.no_grad():  # actions that vary across observations
        for module in model.policy.actor.mu.modules():
            if isinstance(module, th.nn.Linear):
                module.weight.mul_(8.0)
    return model


@pytest.mark.parametrize("algo, squash", [(SAC, "tanh"), (TD3, "tanh"), (DDPG, "tanh"), (PPO, "clip")])
def test_teacher_scores_squash_to_the_teachers_actions(algo, squash) -> None:
    """The scores are the pre-squash deterministic action: squashed the teacher's way, they are ``predict``'s
    deterministic actions; the acting bytes leave the critics out."""
    model = _teacher(algo)
    assert action_squash(model) == squash
    scores = acting_scores(model, th.as_tensor(OBS))
    assert scores.shape == (64, 1)
    low, high = model.action_space.low, model.action_space.high
    actions = squash_outputs(scores.numpy(), {"squash": squash, "low": list(low), "high": list(high)})
    np.testing.assert_allclose(actions, model.predict(OBS, deterministic=True)[0], atol=1e-5)
    assert np.ptp(actions) > 0.25 * (high[0] - low[0])  # not a trivial teacher: its actions vary
    assert 0 < parameter_bytes(model) < sum(p.numel() * 4 for p in model.policy.parameters())
    if algo is not PPO:
        assert acting_network(model).kind == "deterministic_actor"


def test_student_acts_inside_the_space_and_the_description_reproduces_predict() -> None:
    teacher = _teacher(SAC)
    model = SDN("SDNPolicy", ENV, teacher=teacher, learning_starts=64, batch_size=32, policy_kwargs=dict(net_arch=[16]),
                seed=0, device="cpu")
    assert model.policy.squash == "tanh" and model.loss_name == "mse_action"
    model.learn(200)
    policy = model.policy
    policy.set_training_mode(False)
    single, _ = model.predict(OBS[0], deterministic=True)
    batch, _ = model.predict(OBS, deterministic=True)
    assert single.shape == (1,) and batch.shape == (64, 1)
    np.testing.assert_allclose(single, batch[0], atol=1e-6)
    assert np.all(batch >= -2.0) and np.all(batch <= 2.0)
    description = policy.spiking_description()
    assert description.readout == {"kind": "membrane_mean", "scale": 1.0, "squash": "tanh", "low": [-2.0], "high": [2.0]}
    assert description.n_actions == 1
    result = simulate(description, policy.preprocess(th.as_tensor(OBS)).numpy())
    assert np.abs(result.actions - batch).max() <= 1e-4 * 4.0  # within 1e-4 of the action range
    with th.no_grad():  # the torch path (forward + squash) and the compiled path agree
        np.testing.assert_allclose(policy.squash_actions(policy(th.as_tensor(OBS))).numpy(), batch, atol=1e-4)


def test_distillation_brings_the_students_actions_to_the_teachers() -> None:
    """A few hundred updates on one SAC teacher: the student's action error (share of the range) falls well below
    that of the untrained student. Fails if the loss, the squash or the teacher's scores are wrong."""
    teacher = _teacher(SAC)
    model = SDN("SDNPolicy", ENV, teacher=teacher, learning_starts=64, batch_size=64, train_freq=1,
                learning_rate=3e-3, policy_kwargs=dict(net_arch=[64]), seed=0, device="cpu")

    def error() -> float:
        student = model.predict(OBS, deterministic=True)[0]
        return float(np.mean(np.abs(student - teacher.predict(OBS, deterministic=True)[0])) / 4.0)

    before = error()
    model.learn(500)
    after = error()
    assert after < 0.1 and after < 0.5 * before, (before, after)


def test_squash_follows_the_teacher_and_mismatches_are_refused() -> None:
    ppo = _teacher(PPO)
    model = SDN("SDNPolicy", ENV, teacher=ppo, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
    assert model.policy.squash == "clip" and model.loss_name == "mse_presquash"
    assert model.policy.spiking_description().readout["squash"] == "clip"
    tanh_student = SDN("SDNPolicy", ENV, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
    with pytest.raises(TeacherMismatchError, match="squash='clip'"):
        tanh_student.attach_teacher(ppo)
    with pytest.raises(ValueError, match="does not apply to a Box action space"):
        SDN("SDNPolicy", ENV, teacher=_teacher(TD3), distillation_loss="soft_hard_ce", seed=0, device="cpu")
    with pytest.raises(TeacherMismatchError, match="does not match"):
        SDN("SDNPolicy", "MountainCarContinuous-v0", teacher=_teacher(SAC), seed=0, device="cpu")
    with pytest.raises(ValueError, match="squash"):
        SDNPolicy(gym.make(ENV).observation_space, gym.make(ENV).action_space, lambda _: 1e-3, squash="sigmoid")


def test_teacher_from_a_zip_and_the_callback(tmp_path: Path) -> None:
    """SAC and TD3 zips load as teachers without unpickling (TD3 inferred from its policy class); the callback
    hands a Box teacher to SDN as for discrete teachers."""
    for algo in (SAC, TD3):
        teacher = _teacher(algo)
        path = tmp_path / f"{algo.__name__}.zip"
        teacher.save(path)
        loaded = load_teacher(path)
        assert type(loaded) is algo and type(load_model(path)) is algo
        np.testing.assert_allclose(Teacher(loaded).logits(th.as_tensor(OBS)), acting_scores(teacher, th.as_tensor(OBS)))
    model = SDN("SDNPolicy", ENV, learning_starts=32, batch_size=16, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
    model.learn(64, callback=DistillationCallback(str(tmp_path / "TD3.zip")))
    assert model.teacher is not None and model.teacher.squash == "tanh" and model._n_updates > 0


def test_online_distillation_from_a_learning_sac() -> None:
    """Online mode: the student learns from a SAC teacher while it trains (the callback keeps its own pool)."""
    sac = SAC("MlpPolicy", ENV, learning_starts=50, batch_size=16, train_freq=4, **tiny())
    student = SDN("SDNPolicy", ENV, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
    callback = DistillationCallback(student=student, learning_starts=32, batch_size=16, train_freq=4)
    sac.learn(120, callback=callback)
    assert callback.n_updates > 0

"""SDN with every teacher type, online distillation, TensorBoard scalars and the runner (tiny, fast)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_snn import DDQN, SDN, DistillationCallback
from sb3_snn.sdn import SDNPolicy, Teacher, TeacherMismatchError, load_teacher

STUDENT = dict(net_arch=[16], n_steps=4)
SMALL_Q = dict(learning_starts=50, buffer_size=500, train_freq=4, batch_size=16, policy_kwargs=dict(net_arch=[16]))


def _teacher(kind: str, env_id: str = "CartPole-v1"):
    env = gym.make(env_id)
    if kind in ("dqn", "ddqn", "qrdqn"):
        cls = {"dqn": DQN, "ddqn": DDQN, "qrdqn": QRDQN}[kind]
        kwargs = dict(SMALL_Q)
        if kind == "qrdqn":
            kwargs["policy_kwargs"] = dict(net_arch=[16], n_quantiles=5)
        model = cls("MlpPolicy", env, seed=0, **kwargs)
    else:
        cls = {"ppo": PPO, "a2c": A2C}[kind]
        extra = dict(batch_size=32, n_epochs=1) if kind == "ppo" else {}
        model = cls("MlpPolicy", env, n_steps=32, seed=0, policy_kwargs=dict(net_arch=[16]), **extra)
    return model.learn(100)


def _student(env_id: str = "CartPole-v1", **kwargs) -> SDN:
    settings = dict(learning_starts=64, batch_size=32, train_freq=4, buffer_size=1000, seed=0, policy_kwargs=STUDENT)
    return SDN("SDNPolicy", gym.make(env_id), **{**settings, **kwargs})


@pytest.mark.parametrize("kind", ["dqn", "ddqn", "qrdqn", "ppo", "a2c"])
def test_each_teacher_distils(kind: str) -> None:
    teacher = _teacher(kind)
    student = _student()
    before = [p.detach().clone() for p in student.policy.parameters()]
    student.learn(300, callback=DistillationCallback(teacher, temperature=2.0, alpha=0.9))
    assert student._n_updates > 0
    assert any(not th.equal(a, b) for a, b in zip(before, student.policy.parameters(), strict=True))
    values = student.logger.name_to_value
    assert np.isfinite(values["distill/loss"]) and 0.0 <= values["distill/agreement"] <= 1.0


def test_teacher_scores() -> None:
    qrdqn = _teacher("qrdqn")
    obs = th.as_tensor(np.random.default_rng(0).uniform(-1, 1, (8, 4)), dtype=th.float32)
    expected = qrdqn.policy.quantile_net(obs).mean(dim=1)  # Q = mean of the quantiles
    th.testing.assert_close(Teacher(qrdqn).logits(obs), expected)
    ppo = _teacher("ppo")
    logits = Teacher(ppo).logits(obs)
    th.testing.assert_close(th.softmax(logits, 1), ppo.policy.get_distribution(obs).distribution.probs)
    assert Teacher(ppo).parameter_bytes() < Teacher(ppo).parameter_bytes(acting_only=False)


def test_teacher_from_zip_and_shortcut(tmp_path: Path) -> None:
    for kind in ("ddqn", "a2c"):
        teacher = _teacher(kind)
        teacher.save(tmp_path / kind)
        assert isinstance(load_teacher(tmp_path / f"{kind}.zip"), type(teacher) if kind == "a2c" else DQN)
    student = _student(teacher=str(tmp_path / "a2c.zip"))
    student.learn(200)
    assert student._n_updates > 0 and student.teacher_path.endswith("a2c.zip")
    student.save(tmp_path / "student")
    reloaded = SDN.load(tmp_path / "student", env=gym.make("CartPole-v1"))
    reloaded.learn(100, reset_num_timesteps=False)  # re-attaches the teacher from its saved path
    assert reloaded._n_updates > student._n_updates


def test_mismatched_teacher_raises_at_construction() -> None:
    teacher = _teacher("dqn")  # CartPole: 4 observations, 2 actions
    with pytest.raises(TeacherMismatchError, match="observation space"):
        _student("Acrobot-v1", teacher=teacher)
    policy = SDNPolicy(
        gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(3), lambda _: 1e-3, **STUDENT
    )
    with pytest.raises(TeacherMismatchError, match="action space"):
        DistillationCallback(teacher, student=policy)


def test_online_distillation_from_a_learning_teacher(tmp_path: Path) -> None:
    from stable_baselines3.common.logger import configure

    teacher = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, batch_size=32, n_epochs=1, seed=0,
                  policy_kwargs=dict(net_arch=[16]))
    teacher.set_logger(configure(str(tmp_path), ["csv"]))
    student = _student()
    before = [p.detach().clone() for p in student.policy.parameters()]
    callback = DistillationCallback(student=student, learning_starts=64, batch_size=32, train_freq=4)
    teacher.learn(256, callback=callback)
    assert callback.n_updates > 0 and callback.teacher.model is teacher
    assert any(not th.equal(a, b) for a, b in zip(before, student.policy.parameters(), strict=True))
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"distill/agreement", "distill/loss_soft", "distill/synops_per_action"} <= set(header)


class _Frames(gym.Env):
    """Random 36x36 grey frames (the smallest NatureCNN input), 3 actions."""

    observation_space = gym.spaces.Box(0, 255, (36, 36, 1), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), 0.0, False, self.t >= 20, {}


def test_cnn_student_with_stacked_frame_teacher() -> None:
    env = VecFrameStack(DummyVecEnv([_Frames]), n_stack=4)
    teacher = PPO("CnnPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0).learn(16)
    student = SDN("SDNCnnPolicy", env, teacher=teacher, learning_starts=32, batch_size=8, buffer_size=200, seed=0,
                  policy_kwargs=dict(conv_arch=[(4, 8, 4), (4, 3, 2)], net_arch=[8]))
    assert student.observation_space.shape == (4, 36, 36) and student.policy.n_steps == 4
    student.learn(64)
    assert student._n_updates > 0 and bool(student.policy.network.calibrated)


def test_tensorboard_has_distillation_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    student = _student(teacher=_teacher("dqn"), tensorboard_log=str(tmp_path))
    student.learn(300, log_interval=1)
    runs = list(tmp_path.glob("SDN_*"))
    assert len(runs) == 1
    accumulator = EventAccumulator(str(runs[0]))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected = {"distill/loss", "distill/loss_soft", "distill/loss_hard", "distill/agreement",
                "distill/firing_rate/fc1", "distill/synops_per_action"}
    assert expected <= tags, tags


def test_runner_trains_sdn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_snn.cli import train

    teacher_path = tmp_path / "teacher.zip"
    _teacher("dqn").save(teacher_path)
    config = tmp_path / "sdn.yml"
    config.write_text(
        "CartPole-v1:\n  n_timesteps: 300\n  policy: 'SDNPolicy'\n  policy_kwargs: \"dict(net_arch=[8], n_steps=4)\"\n"
        "  learning_starts: 64\n  batch_size: 16\n  buffer_size: 1000\n  temperature: 3.0\n"
    )
    monkeypatch.chdir(tmp_path)
    argv = ["--algo", "sdn", "--env", "CartPole-v1", "-conf", str(config), "-f", str(tmp_path / "logs"),
            "--teacher", str(teacher_path), "--eval-freq", "-1", "--seed", "0", "-params", "alpha:0.8"]
    assert train.main(argv) == 0
    saved = tmp_path / "logs" / "sdn" / "CartPole-v1_1" / "CartPole-v1.zip"
    assert saved.is_file()
    model = SDN.load(saved)
    assert model.teacher_path == str(teacher_path) and model.alpha == 0.8 and model.temperature == 3.0
    assert model._n_updates > 0


def test_teacher_flag_becomes_a_hyperparameter() -> None:
    from sb3_snn.cli.train import _move_teacher_to_hyperparams as move

    assert move(["--algo", "sdn", "--teacher", "a b.zip"]) == ["--algo", "sdn", "-params", "teacher:'a b.zip'"]
    assert move(["--teacher=t.zip", "-params", "alpha:0.5", "--seed", "1"]) == [
        "-params", "teacher:'t.zip'", "alpha:0.5", "--seed", "1"]
    assert move(["--algo", "dqn"]) == ["--algo", "dqn"]

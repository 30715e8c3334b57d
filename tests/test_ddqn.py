"""Double DQN: the target computation, training through SB3, save/load, TensorBoard name."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure
from torch.nn import functional as F

from sb3_snn import DDQN
from sb3_snn.ddqn import double_q_target

from conftest import scalar_tags


def test_double_q_target_differs_from_dqn_on_constructed_case():
    # Online net prefers action 1, the target net values action 0 highest.
    next_q_online = th.tensor([[1.0, 2.0], [4.0, 0.0]])
    next_q_target = th.tensor([[5.0, 3.0], [1.0, 7.0]])
    rewards = th.tensor([[1.0], [0.5]])
    dones = th.tensor([[0.0], [1.0]])
    target = double_q_target(next_q_online, next_q_target, rewards, dones, 0.9)
    # Double DQN: Q_target(s', argmax Q_online) -> 3.0 for the first sample; the done sample keeps r.
    assert th.allclose(target, th.tensor([[1.0 + 0.9 * 3.0], [0.5]]))
    dqn_target = rewards + (1 - dones) * 0.9 * next_q_target.max(dim=1, keepdim=True).values
    assert not th.allclose(target, dqn_target)  # DQN would bootstrap from 5.0


def test_double_q_target_accepts_per_sample_discounts():
    target = double_q_target(th.eye(2), th.eye(2) * 2, th.zeros(2, 1), th.zeros(2, 1), th.tensor([[0.5], [0.25]]))
    assert th.allclose(target, th.tensor([[1.0], [0.5]]))


def test_ddqn_train_minimises_the_double_q_loss():
    """One gradient step with lr=0: the logged loss is the Huber loss to the Double-DQN target."""
    model = DDQN("MlpPolicy", "CartPole-v1", learning_rate=0.0, learning_starts=0, buffer_size=100, seed=3)
    model.set_logger(configure(None, []))
    obs = np.array([[0.1, -0.2, 0.05, 0.3]], dtype=np.float32)
    next_obs = np.array([[0.2, 0.1, -0.1, 0.4]], dtype=np.float32)
    for _ in range(8):  # identical transitions: the sampled batch is known
        model.replay_buffer.add(obs, next_obs, np.array([[1]]), np.array([1.0]), np.array([0.0]), [{}])
    obs_t, next_t = th.as_tensor(obs), th.as_tensor(next_obs)
    with th.no_grad():  # the target net values the online net's choice low and the other action high
        online_choice = int(model.q_net(next_t).argmax())
        last = model.q_net_target.q_net[-1]
        last.weight.zero_()
        last.bias.copy_(th.tensor([5.0, 5.0]))
        last.bias[online_choice] = -5.0
    with th.no_grad():
        current = model.q_net(obs_t)[:, 1:2]
        online_next, target_next = model.q_net(next_t), model.q_net_target(next_t)
        expected = F.smooth_l1_loss(current, double_q_target(online_next, target_next, th.ones(1, 1), th.zeros(1, 1), 0.99))
        dqn_loss = F.smooth_l1_loss(current, 1 + 0.99 * target_next.max(dim=1, keepdim=True).values)
    model.train(gradient_steps=1, batch_size=4)
    logged = model.logger.name_to_value["train/loss"]
    assert logged == pytest.approx(expected.item(), rel=1e-5)
    assert logged != pytest.approx(dqn_loss.item(), rel=1e-3)


def test_ddqn_save_load_same_actions_and_learn_again(tmp_path):
    model = DDQN("MlpPolicy", "CartPole-v1", learning_starts=50, train_freq=4, buffer_size=500,
                 policy_kwargs=dict(net_arch=[16]), seed=0)
    model.learn(200)
    observations = np.stack([model.env.observation_space.sample() for _ in range(16)])
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "ddqn.zip")
    loaded = DDQN.load(tmp_path / "ddqn.zip", env=model.env)
    assert isinstance(loaded, DDQN)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)
    loaded.learn(100)  # a loaded model trains on
    assert loaded.num_timesteps >= 100


def test_ddqn_logs_to_tensorboard_under_its_own_name(tmp_path):
    model = DDQN("MlpPolicy", "CartPole-v1", learning_starts=20, train_freq=4, buffer_size=500,
                 policy_kwargs=dict(net_arch=[16]), tensorboard_log=str(tmp_path), seed=0)
    model.learn(300, log_interval=1)
    runs = [p.name for p in tmp_path.iterdir()]
    assert runs == ["DDQN_1"]
    tags = scalar_tags(tmp_path / "DDQN_1")
    assert "train/loss" in tags and "rollout/exploration_rate" in tags


def test_ddqn_is_a_dqn_drop_in():
    assert issubclass(DDQN, DQN)
    assert DDQN.policy_aliases["MlpPolicy"] is DQN.policy_aliases["MlpPolicy"]

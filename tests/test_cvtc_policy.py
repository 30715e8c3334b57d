"""CVTCPolicy inside SB3: learn, save, load, spaces, description, stats, rl_zoo3."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure

import sb3_snn
from sb3_snn.cvtc import CVTCPolicy, CVTCStatsCallback
from sb3_snn.spiking.description import SpikingDescription

TINY = dict(learning_starts=50, train_freq=8, gradient_steps=2, batch_size=16, buffer_size=500, target_update_interval=50)
KWARGS = dict(net_arch=[8], weight_sum_reg=1.0, encoder={"n_points": 5})


@pytest.mark.parametrize("algo", [DQN, sb3_snn.DDQN])
def test_learn_save_load_same_actions(algo: type, tmp_path) -> None:
    model = algo("CVTCPolicy", "CartPole-v1", policy_kwargs=KWARGS, seed=0, **TINY)
    assert isinstance(model.policy, CVTCPolicy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(150)
    ignored = [w for w in caught if "weight_sum_reg" in str(w.message)]
    assert len(ignored) == (1 if algo is DQN else 0)  # DQN never adds the regulariser: warned once
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32) * 0.5
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip")
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    assert loaded.policy.q_net.layers[0].in_features == 20 and loaded.policy.weight_sum_reg == 1.0
    loaded.set_env(gym.make("CartPole-v1"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loaded DQN's policy warns about weight_sum_reg again
        loaded.learn(60)  # training goes on after load


def test_constructor_parameters_complete() -> None:
    model = DQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(KWARGS, inference="mostafa", q_sign=-1), **TINY)
    params = model.policy._get_constructor_parameters()
    expected = set(inspect.signature(CVTCPolicy.__init__).parameters) - {"self"}
    assert expected <= set(params), expected - set(params)
    rebuilt = CVTCPolicy(**params)
    assert rebuilt.inference == "mostafa" and rebuilt.q_sign == -1 and rebuilt.q_net.layers[0].in_features == 20


def test_inference_modes_and_regulariser() -> None:
    model = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(KWARGS, inference="mostafa"), **TINY)
    policy = model.policy
    policy.set_training_mode(False)
    assert all(layer.mostafa for layer in policy.q_net.layers)
    policy.set_training_mode(True)
    assert not any(layer.mostafa for layer in policy.q_net.layers + policy.q_net_target.layers)
    with th.no_grad():
        policy.q_net.layers[0].weight.fill_(0.0)
    expected = 8.0 + (1 - policy.q_net.layers[1].weight.sum(1)).clamp_min(0).sum().item()
    assert policy.auxiliary_loss().item() == pytest.approx(expected)


@pytest.mark.parametrize(
    "obs_space, action_space, match",
    [
        (spaces.Box(0, 255, (3, 16, 16), np.uint8), spaces.Discrete(2), "images"),
        (spaces.Dict({"x": spaces.Discrete(4)}), spaces.Discrete(2), "Dict and Tuple observations are not supported"),
        (spaces.Box(-1, 1, (2, 3)), spaces.Discrete(2), "1-D Box"),
        (spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (1,)), "Discrete action"),
    ],
)
def test_unsupported_spaces(obs_space: spaces.Space, action_space: spaces.Space, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CVTCPolicy(obs_space, action_space, lambda _: 1e-3)


def test_spiking_description_round_trip(tmp_path) -> None:
    model = DQN("CVTCPolicy", "MountainCar-v0", policy_kwargs=dict(net_arch=[6, 5], encoder="mountaincar", q_sign=-1), **TINY)
    assert model.policy.inference == "beta"  # the default acting mode: Eq. 9
    model.policy.set_inference("mostafa")  # the beta-free network a chip runs
    description = model.policy.spiking_description()
    assert [layer.neuron.model for layer in description.layers] == ["temporal"] * 3
    assert description.layers[0].neuron.params["beta"] == 0.0 and description.layers[0].neuron.params["beta_training"] == 1e-3
    assert description.encoding["kind"] == "population_temporal" and description.encoding["gains"] == [7.0, 120.0]
    assert description.readout["q_sign"] == -1 and description.n_actions == 3
    loaded = SpikingDescription.from_files(description.to_files(tmp_path / "cvtc"))
    assert np.array_equal(loaded.layers[1].weight, model.policy.q_net.layers[1].weight.detach().numpy())
    model.policy.set_inference("beta")
    assert model.policy.spiking_description().layers[0].neuron.params["beta"] == 1e-3


def test_weight_sum_reg_is_applied_or_warned() -> None:
    """DDQN adds the regulariser to every step's loss (silently); plain DQN does not and the policy warns
    once, naming it; without a regulariser nothing is said."""
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(8, 4)), dtype=th.float32)

    def steps(policy: CVTCPolicy, n: int, auxiliary: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(n):
                loss = policy.q_net(obs).sum() + (policy.auxiliary_loss() if auxiliary else 0.0)
                policy.optimizer.zero_grad()
                loss.backward()
                policy.optimizer.step()
        return [str(w.message) for w in caught]

    policy = CVTCPolicy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), lambda _: 1e-3, net_arch=[4], weight_sum_reg=10.0)
    assert steps(policy, 2, auxiliary=True) == []
    messages = steps(policy, 3, auxiliary=False)
    assert len(messages) == 1 and "weight_sum_reg=10" in messages[0] and "sb3_snn.DDQN" in messages[0]
    plain = CVTCPolicy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), lambda _: 1e-3, net_arch=[4])
    assert steps(plain, 2, auxiliary=False) == []


def test_stats_callback_logs(tmp_path) -> None:
    model = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=KWARGS, **TINY)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(120, callback=CVTCStatsCallback(log_freq=40, batch_size=32), log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("cvtc/output_spike_time", "cvtc/beta_only_share", "cvtc/q_gap_mostafa"):
        assert key in header
    with pytest.warns(UserWarning, match="not a CVTC policy"):
        DQN("MlpPolicy", "CartPole-v1", **TINY).learn(10, callback=CVTCStatsCallback(log_freq=5))


@pytest.mark.expensive
def test_stock_rl_zoo_train(tmp_path) -> None:
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "CartPole-v1", "--gym-packages", "sb3_snn",
        "-params", "policy:'CVTCPolicy'", "policy_kwargs:dict(net_arch=[8])", "-n", "300", "-f", str(tmp_path / "logs"),
        "--eval-freq", "-1", "--num-threads", "1",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "logs" / "dqn").glob("CartPole-v1_*/CartPole-v1.zip"))

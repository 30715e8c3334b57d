"""``sb3_snn.common``: the acting network of any SB3 model, loading a zip, the episode loop and observations."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_snn import SDN, DDQN
from sb3_snn.common import (
    Agreement,
    CostSum,
    acting_network,
    acting_scores,
    collect_observations,
    description_input,
    load_model,
    network_input,
    parameter_bytes,
    play_episodes,
)

NET = dict(net_arch=[16])


def _model(kind: str):
    if kind == "dqn":
        return DQN("MlpPolicy", "CartPole-v1", policy_kwargs=NET, learning_starts=10**6, seed=0)
    if kind == "ddqn":
        return DDQN("MlpPolicy", "CartPole-v1", policy_kwargs=NET, learning_starts=10**6, seed=0)
    if kind == "qrdqn":
        return QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[16], n_quantiles=5), seed=0)
    if kind == "ppo":
        return PPO("MlpPolicy", "CartPole-v1", policy_kwargs=NET, n_steps=32, batch_size=32, seed=0)
    if kind == "a2c":
        return A2C("MlpPolicy", "CartPole-v1", policy_kwargs=NET, seed=0)
    if kind == "sdn":
        return SDN("SDNPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[16], n_steps=4), seed=0)
    return DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), seed=0)


OBS = th.as_tensor(np.random.default_rng(0).uniform(-1, 1, (8, 4)), dtype=th.float32)


@pytest.mark.parametrize("kind", ["dqn", "ddqn", "qrdqn", "ppo", "a2c", "sdn", "cvtc"])
def test_acting_scores_and_parameter_bytes(kind):
    """The scores are the ones each algorithm acts on (argmax = its greedy action); the bytes count the acting
    network only (no target network, no critic)."""
    model = _model(kind)
    scores = acting_scores(model, OBS)
    assert scores.shape == (8, 2)
    actions, _ = model.predict(OBS.numpy(), deterministic=True)
    np.testing.assert_array_equal(scores.argmax(1).numpy(), actions)
    everything = sum(p.numel() * p.element_size() for p in model.policy.parameters())
    acting = parameter_bytes(model)
    if kind == "sdn":
        assert acting == model.policy.parameter_bytes() == everything
    else:
        assert 0 < acting < everything  # a target network or a critic left out
    if kind == "qrdqn":
        th.testing.assert_close(scores, model.policy.quantile_net(OBS).mean(dim=1))
    if kind == "ppo":
        th.testing.assert_close(scores, model.policy.get_distribution(OBS).distribution.logits)
    expected_kind = {"dqn": "q", "ddqn": "q", "cvtc": "q", "qrdqn": "quantile", "ppo": "actor", "a2c": "actor"}
    assert acting_network(model).kind == expected_kind.get(kind, "policy")


@pytest.mark.parametrize("kind, algo", [("ddqn", DQN), ("qrdqn", QRDQN), ("ppo", PPO), ("a2c", A2C), ("sdn", SDN)])
def test_load_model_infers_the_algorithm(kind, algo, tmp_path: Path):
    model = _model(kind)
    model.save(tmp_path / kind)
    loaded = load_model(tmp_path / kind)  # no .zip: as SB3 saves
    assert type(loaded) is algo
    np.testing.assert_array_equal(loaded.predict(OBS.numpy(), deterministic=True)[0],
                                  model.predict(OBS.numpy(), deterministic=True)[0])
    if kind == "ddqn":
        assert type(load_model(tmp_path / "ddqn.zip", algo="ddqn")) is DDQN
        assert loaded.replay_buffer.buffer_size == 1


def test_load_model_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"model 'missing\.zip' not found"):
        load_model("missing.zip")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="not a Stable-Baselines3 model"):
        load_model(tmp_path / "text.zip")
    _model("dqn").save(tmp_path / "dqn")
    with pytest.raises(ValueError, match=r"unknown algorithm 'dqm'; known: .*ddqn.*dqn.*sdn"):
        load_model(tmp_path / "dqn.zip", algo="dqm")


def test_episode_loop_hooks_and_caps():
    """Hooks see every step's observation and greedy action; ``max_steps`` stops the run, ``max_episode_steps``
    cuts episodes; epsilon > 0 needs a Discrete action space."""
    model = _model("dqn")
    seen: list[int] = []
    agreement = Agreement(model)
    cost_calls: list[int] = []

    def cost(obs):
        from sb3_snn.spiking import CostReport

        cost_calls.append(len(obs))
        return CostReport(10.0, {"a": 10.0}, 2.0, 5, {"a": 0.5})

    costs = CostSum(cost, every=3)
    run = play_episodes(model, gym.make("CartPole-v1"), 2, epsilon=0.0, seed=3, max_episode_steps=7,
                        hooks=[lambda obs, greedy: seen.append(int(greedy[0])), agreement, costs])
    assert run.n_steps == 14 and run.truncated == 2 and run.lengths == [7, 7] and len(seen) == 14
    assert agreement.matches == 14 and agreement.rate == 1.0  # the model agrees with itself
    assert costs.measured == len(cost_calls) == 5 and costs.synops == 50.0 and costs.mean_rates() == {"a": 0.5}
    capped = play_episodes(model, gym.make("CartPole-v1"), 5, seed=3, max_steps=4)
    assert capped.n_steps == 4 and capped.scores == []
    with pytest.raises(ValueError, match="Discrete action space"):
        play_episodes(lambda obs: np.zeros((1, 1)), gym.make("Pendulum-v1"), 1, epsilon=0.1)


def test_collect_observations_and_network_input():
    """Seeded collection replays; a spiking policy's input is its own ``preprocess``, a bare description's is
    the observation times its input scale."""
    model = _model("sdn")
    env = make_vec_env("CartPole-v1", n_envs=1)
    first = collect_observations(env, 20, lambda obs: model.predict(obs, deterministic=True)[0], epsilon=0.5, seed=1)
    again = collect_observations(env, 20, lambda obs: model.predict(obs, deterministic=True)[0], epsilon=0.5, seed=1)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (20, 4)
    assert collect_observations(env, 5, None, seed=2).shape == (5, 4)  # random actions
    th.testing.assert_close(network_input(model.policy, first), model.policy.preprocess(th.as_tensor(first)))
    np.testing.assert_allclose(description_input(model.policy.spiking_description(), model.policy)(first), first, rtol=1e-6)
    from sb3_snn.backends import examples

    description = examples.converted_like(hidden=(4,))
    description.metadata["input_scale"] = 0.5
    np.testing.assert_array_equal(description_input(description)(first), first * 0.5)

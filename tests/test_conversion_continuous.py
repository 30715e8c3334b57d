"""Conversion of continuous actors (TD3 / DDPG / SAC): extraction, the squashed readout, Box actions,
membrane carry-over (exact in both simulations, and a recurrent-style ``predict``), the evaluation's action
error. Tiny untrained actors on Pendulum-v1; the whole module runs in seconds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, PPO, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

from sb3_snn import convert
from sb3_snn.common.evaluation import ActionError, play_episodes
from sb3_snn.conversion import ConvertedActorPolicy, ConvertedQPolicy, extract_network, simulate_fast, simulate_reference
from sb3_snn.conversion.evaluation import evaluate_conversion, evaluate_source, run_episodes
from sb3_snn.spiking import simulate

ALGOS = {"TD3": TD3, "DDPG": DDPG, "SAC": SAC}


def teacher(algo: str, seed: int = 0) -> TD3 | SAC:
    return ALGOS[algo]("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 32]}, learning_starts=10**6,
                       seed=seed, device="cpu")


def pendulum_obs(n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations inside Pendulum-v1's space (cos, sin, angular velocity)."""
    return np.random.default_rng(seed).uniform([-1, -1, -8], [1, 1, 8], (n, 3)).astype(np.float32)


@pytest.fixture(scope="module", params=list(ALGOS))
def model(request: pytest.FixtureRequest) -> TD3 | SAC:
    return teacher(request.param, seed=3)


def dyadic(shape: tuple[int, ...], scale: float, seed: int) -> th.Tensor:
    """Random multiples of 1/64: every sum of them is exact in float32, in any order."""
    gen = th.Generator().manual_seed(seed)
    return th.round(th.randn(shape, generator=gen) * scale * 64) / 64


def dyadic_net(layers: list[nn.Module], seed: int = 0) -> list[nn.Module]:
    with th.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                layer.weight.copy_(dyadic(tuple(layer.weight.shape), 0.5, seed + i))
                layer.bias.copy_(dyadic(tuple(layer.bias.shape), 0.1, seed + 100 + i))
    return layers


# --- extraction ----------------------------------------------------------------------------------


def test_extract_keeps_the_tanh_aside_and_acts_like_the_teacher(model: TD3 | SAC) -> None:
    source = extract_network(model)
    assert source.kind == "continuous_actor" and source.squash == "tanh"
    assert [type(layer).__name__ for layer in source.layers] == ["Flatten", "Linear", "Linear", "Linear"]
    assert source.layers[-1].out_features == 1
    obs = pendulum_obs(64)
    teacher_actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(source.act(obs), teacher_actions, atol=1e-5)
    assert extract_network(model.policy).names == extract_network(model.policy.actor).names == source.names


def test_unsupported_continuous_models_are_refused() -> None:
    sde = SAC("MlpPolicy", "Pendulum-v1", use_sde=True, policy_kwargs={"net_arch": [8]}, device="cpu")
    with pytest.raises(ValueError, match="gSDE"):
        extract_network(sde)
    with pytest.raises(ValueError, match=r"Discrete actions .* or the deterministic actor of TD3"):
        extract_network(PPO("MlpPolicy", "Pendulum-v1", device="cpu"))
    tanh_trunk = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], "activation_fn": nn.Tanh}, device="cpu")
    with pytest.raises(ValueError, match=r"'actor\.mu\.1' \(Tanh\)"):
        extract_network(tanh_trunk)
    with pytest.raises(ValueError, match="signed readout"):
        convert(teacher("TD3"), calibration_obs=pendulum_obs(8), readout="rate")


# --- the converted actor -------------------------------------------------------------------------


def test_converted_actor_acts_inside_the_space_and_approaches_the_teacher(model: TD3 | SAC) -> None:
    """Box actions inside [low, high], single and batched; the error to the teacher shrinks with T, and
    at large T it is that of the clipped ANN (the percentile clips few activations)."""
    obs = pendulum_obs(200, seed=1)
    policy = convert(model, calibration_obs=pendulum_obs(500, seed=2), timesteps=8, percentile=99.99)
    assert isinstance(policy, ConvertedActorPolicy) and policy.scales[-1] == 1.0
    space = model.action_space
    single, state = policy.predict(obs[0])
    assert single.shape == (1,) and state is None
    actions, _ = policy.predict(obs)
    assert actions.shape == (200, 1) and np.all(actions >= space.low) and np.all(actions <= space.high)
    teacher_actions, _ = model.predict(obs, deterministic=True)
    errors = {}
    for steps in (8, 64, 1024):
        predicted, _ = policy.with_settings(timesteps=steps).predict(obs)
        errors[steps] = float(np.mean(np.abs(predicted - teacher_actions)) / float(space.high[0] - space.low[0]))
    assert errors[1024] < errors[64] < errors[8], errors
    assert errors[1024] < 0.01, errors
    with th.no_grad():  # forward is the readout, _predict its tanh, predict the rescaled action
        readout = policy(th.as_tensor(obs))
        np.testing.assert_allclose(policy._predict(th.as_tensor(obs)).numpy(), th.tanh(readout).numpy())
    np.testing.assert_allclose(actions, space.low + (np.tanh(readout.numpy()) + 1) * (space.high - space.low) / 2,
                               rtol=1e-5, atol=1e-5)


def test_description_records_the_squash_and_simulates_to_predict(tmp_path) -> None:
    policy = convert(teacher("SAC"), calibration_obs=pendulum_obs(200), timesteps=24)
    description = policy.spiking_description()
    assert description.readout == {"kind": "robust", "squash": "tanh", "low": [-2.0], "high": [2.0]}
    assert description.n_actions == 1
    obs = pendulum_obs(50, seed=4)
    result = simulate(description, policy.preprocess(th.as_tensor(obs)).numpy())
    with th.no_grad():
        np.testing.assert_allclose(result.outputs, policy(th.as_tensor(obs)).numpy(), atol=1e-5)
    squashed = -2.0 + (np.tanh(result.outputs) + 1.0) * 2.0  # low + (tanh(f) + 1)(high - low) / 2
    np.testing.assert_allclose(squashed, policy.predict(obs)[0], atol=1e-4 * 4)


def test_nature_cnn_actor_converts() -> None:
    """A TD3 actor on images (NatureCNN trunk): converted, and its description simulates to its readout."""
    from gymnasium import spaces
    from stable_baselines3.td3.policies import CnnPolicy

    images = spaces.Box(0, 255, (1, 36, 36), np.uint8)
    actor_policy = CnnPolicy(images, spaces.Box(-1.0, 3.0, (2,), np.float32), lambda _: 0.0,
                             features_extractor_kwargs={"features_dim": 16}, net_arch=[8])
    obs = np.random.default_rng(0).integers(0, 255, size=(6, 1, 36, 36), dtype=np.uint8)
    policy = convert(actor_policy, calibration_obs=obs, timesteps=12)
    assert [type(layer).__name__ for layer in policy.layers] == ["Conv2d", "Conv2d", "Conv2d", "Flatten", "Linear",
                                                                 "Linear", "Linear"]
    actions, _ = policy.predict(obs)
    assert actions.shape == (6, 2) and np.all(actions >= -1.0) and np.all(actions <= 3.0)
    result = simulate(policy.spiking_description(), obs.astype(np.float64) / 255.0)
    np.testing.assert_allclose(result.outputs, policy.simulate(th.as_tensor(obs), dtype=th.float64).outputs.numpy(),
                               atol=1e-9)


def test_save_load_keeps_squash_and_carry_over(tmp_path) -> None:
    policy = convert(teacher("TD3"), calibration_obs=pendulum_obs(100), timesteps=16, carry_over=True)
    path = tmp_path / "actor.pt"
    policy.save(path)
    raw = th.load(path, weights_only=True)
    assert raw["class"] == "ConvertedActorPolicy"
    assert raw["constructor"]["squash"] == "tanh" and raw["constructor"]["carry_over"] is True
    loaded = ConvertedActorPolicy.load(path, device="cpu")
    assert loaded.carry_over and loaded.squash == "tanh" and loaded.action_space == policy.action_space
    obs = pendulum_obs(5)
    first, state = policy.predict(obs)
    again, loaded_state = loaded.predict(obs)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(policy.predict(obs, state)[0], loaded.predict(obs, loaded_state)[0])


def test_discrete_models_still_give_the_q_policy() -> None:
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, learning_starts=10**6, device="cpu")
    policy = convert(model, calibration_obs=np.zeros((4, 4), np.float32), timesteps=4)
    assert type(policy) is ConvertedQPolicy and not policy.carry_over
    assert "carry_over" not in policy.spiking_description().metadata


# --- carry-over ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: [nn.Flatten(), nn.Linear(6, 24), nn.Linear(24, 16), nn.Linear(16, 3)],
    lambda: [nn.Conv2d(2, 4, 3, stride=2), nn.Conv2d(4, 6, 3, padding=1), nn.Flatten(), nn.Linear(96, 8), nn.Linear(8, 3)],
])
@pytest.mark.parametrize("readout", ["robust", "rate", "robust_hidden"])
def test_initial_membranes_fast_equals_reference(make, readout: str) -> None:
    """With initial membranes (negative, above threshold, fractional) the fast path still gives the per-step
    loop's spikes and membranes exactly (dyadic arithmetic), first layer included."""
    layers = dyadic_net(make(), seed=11)
    x = dyadic((5, 6) if len(layers) == 4 else (5, 2, 9, 9), 0.8, seed=7)
    fresh = simulate_reference(layers, x, 20, readout=readout)
    hidden = [i for i, layer in enumerate(layers) if isinstance(layer, (nn.Linear, nn.Conv2d))][:-1]
    initial = {i: dyadic(tuple(fresh.final_potential[i].shape), 1.5, seed=20 + i) for i in hidden}
    fast = simulate_fast(layers, x, 20, readout=readout, initial_potential=initial)
    ref = simulate_reference(layers, x, 20, readout=readout, initial_potential=initial)
    for key in ref.spike_counts:
        assert th.equal(fast.spike_counts[key], ref.spike_counts[key]), key
        assert th.equal(fast.final_potential[key], ref.final_potential[key]), key
    assert th.equal(fast.outputs, ref.outputs)
    assert any(not th.equal(fast.spike_counts[i], fresh.spike_counts[i]) for i in hidden)  # the state matters
    with pytest.raises(ValueError, match="only hidden"):
        simulate_fast(layers, x, 20, initial_potential={len(layers) - 1: fresh.final_potential[len(layers) - 1]})


def test_carry_over_over_k_actions_is_one_action_of_k_t_steps() -> None:
    """Same observation K times with the membranes carried over: the hidden neurons run K*T steps without
    a break, so the mean of the K robust readouts is exactly the robust readout of one K*T-step action."""
    layers = dyadic_net([nn.Flatten(), nn.Linear(6, 24), nn.Linear(24, 16), nn.Linear(16, 3)], seed=5)
    x = dyadic((4, 6), 0.8, seed=9)
    state: dict[int, th.Tensor] | None = None
    outputs = []
    for _ in range(4):
        run = simulate_fast(layers, x, 16, initial_potential=state)
        state = {i: run.final_potential[i] for i in (1, 2)}
        outputs.append(run.outputs)
    long = simulate_fast(layers, x, 64)
    assert th.equal(th.stack(outputs).mean(dim=0), long.outputs)


def test_carry_over_predict_is_recurrent_and_resets_at_episode_start() -> None:
    policy = convert(teacher("TD3"), calibration_obs=pendulum_obs(200), timesteps=8, carry_over=True)
    obs = pendulum_obs(3, seed=5)
    fresh, state = policy.predict(obs)
    assert state is not None and [s.shape for s in state] == [(3, 32), (3, 32)]
    np.testing.assert_array_equal(fresh, policy.with_settings(carry_over=False).predict(obs)[0])
    carried, _ = policy.predict(obs, state)
    assert not np.array_equal(carried, fresh)  # the membranes left over change the next action
    mixed, _ = policy.predict(obs, state, episode_start=np.array([True, False, True]))
    np.testing.assert_array_equal(mixed[[0, 2]], fresh[[0, 2]])  # an episode start is a fresh start
    np.testing.assert_array_equal(mixed[1], carried[1])
    initial = {i: th.as_tensor(v) for i, v in zip(policy.hidden_layers, state, strict=True)}
    sim = policy.simulate(th.as_tensor(obs), initial_potential=initial)
    np.testing.assert_allclose(carried, policy.unscale_action(th.tanh(sim.outputs).numpy()), atol=1e-6)
    with pytest.raises(ValueError, match="state does not fit"):
        policy.predict(obs[:2], state)
    mean, _ = evaluate_policy(policy, gym.make("Pendulum-v1"), n_eval_episodes=1, warn=False)  # SB3 passes state
    assert np.isfinite(mean)


# --- evaluation ----------------------------------------------------------------------------------


def test_action_error_hook() -> None:
    model = teacher("SAC")
    space = model.action_space
    same = ActionError(model, space)
    obs = pendulum_obs(1)
    same(obs, model.predict(obs, deterministic=True)[0])
    assert same.mean == 0.0
    other = ActionError(model, space)
    other(obs, np.clip(model.predict(obs, deterministic=True)[0] + 1.0, -10, 10))
    assert other.mean == pytest.approx(1.0 / 4.0)


def test_evaluate_conversion_reports_action_error_and_replays_episodes() -> None:
    """Box actions: no exploration, the action error instead of the conversion rate; with carry-over the
    membranes restart at every episode, so episode 2 of a run replays as a one-episode run of its seed."""
    model = teacher("TD3")
    policy = convert(model, calibration_obs=pendulum_obs(200), timesteps=8)
    env = gym.make("Pendulum-v1")
    result = evaluate_conversion(policy, model, env, n_episodes=1, seed=3, max_episode_steps=20)
    assert result.conversion_rate is None and 0.0 < result.action_error < 0.2 and result.synops_per_action > 0
    assert evaluate_source(model, env, n_episodes=1, seed=3, max_episode_steps=20).action_error == 0.0
    carried = policy.with_settings(carry_over=True)
    two = run_episodes(carried, env, 2, seed=3, max_episode_steps=15)
    one = run_episodes(carried, env, 1, seed=4, max_episode_steps=15)
    assert two["scores"][1] == one["scores"][0]
    assert two["scores"][0] != run_episodes(policy, env, 1, seed=3, max_episode_steps=15)["scores"][0]
    starts: list[int] = []
    play_episodes(model, env, 2, seed=0, max_episode_steps=3, on_episode_start=lambda: starts.append(1))
    assert len(starts) == 2

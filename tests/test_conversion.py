"""DQN -> IF-SNN conversion: exactness of the fast simulation, readout, normalisation, policy API."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from sb3_snn import ConvertedQPolicy, convert
from sb3_snn.conversion import StreamingPercentile, extract_network, simulate_fast, simulate_reference
from sb3_snn.conversion import simulation
from sb3_snn.conversion.simulation import _if_loop, first_layer_counts, if_dynamics, solve_cumulative
from sb3_snn.spiking import count_operations, simulate


def dyadic(shape: tuple[int, ...], scale: float, denominator: int = 64, seed: int = 0) -> th.Tensor:
    """Random multiples of 1/denominator: every sum of them is exact in float32, in any order."""
    gen = th.Generator().manual_seed(seed)
    return th.round(th.randn(shape, generator=gen) * scale * denominator) / denominator


def dyadic_net(layers: list[nn.Module], scale: float = 0.4, seed: int = 0) -> list[nn.Module]:
    with th.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                layer.weight.copy_(dyadic(tuple(layer.weight.shape), scale, seed=seed + i))
                layer.bias.copy_(dyadic(tuple(layer.bias.shape), 0.1, seed=seed + 100 + i))
    return layers


def mlp() -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(6, 24), nn.Linear(24, 16), nn.Linear(16, 3)]


def small_cnn() -> list[nn.Module]:
    return [nn.Conv2d(2, 4, 3, stride=2), nn.Conv2d(4, 6, 3, padding=1), nn.Flatten(), nn.Linear(6 * 4 * 4, 8),
            nn.Linear(8, 3)]


# --- the dynamics: where the fast path is exact and where it is not taken ------------------------


def test_first_layer_closed_form_any_constant_current() -> None:
    """Constant current: n[t] = clip(floor(t z), 0, t) for every z, including z > V_thr and z < 0."""
    z = th.tensor([[-2.0, -0.25, 0.0, 0.125, 0.5, 0.984375, 1.0, 1.5, 3.0]])
    steps = 40
    counts, v_final = _if_loop(z.expand(steps, -1).contiguous(), 1.0)
    closed = first_layer_counts(z, steps)[:, 0]
    assert th.equal(closed, counts)
    assert th.equal(steps * z[0] - closed[-1], v_final)  # V(T) = T z - n(T)


def test_scan_identity_exact_when_currents_at_most_threshold() -> None:
    """I[t] <= V_thr (negative currents allowed): the cumsum/cummax identity is taken for every neuron."""
    current = dyadic((200, 300), 0.6).clamp(max=1.0)  # negative and positive, never above V_thr
    assert (current < 0).any()
    counts, _, v_final, fast = if_dynamics(current)
    loop_counts, loop_v = _if_loop(current, 1.0)
    assert bool(fast.all())
    assert th.equal(counts, loop_counts) and th.equal(v_final, loop_v)


def test_scan_falls_back_where_membrane_reaches_two_thresholds() -> None:
    """Currents above V_thr: the identity would over-count (a neuron fires at most once per step);
    those neurons are detected and solved with the per-step loop, the rest stay on the fast path."""
    current = dyadic((100, 64), 0.5, seed=3)
    current[:10, :8] = 1.75  # strong input at the start: v climbs above 2 V_thr
    counts, _, v_final, fast = if_dynamics(current)
    loop_counts, loop_v = _if_loop(current, 1.0)
    assert th.equal(counts, loop_counts) and th.equal(v_final, loop_v)
    assert not bool(fast[:8].any()) and bool(fast[8:].any())
    raw = th.cummax(th.floor(th.cumsum(current, 0)).clamp_min(0), 0).values  # the identity alone
    assert (raw[:, :8] != loop_counts[1:, :8]).any(dim=0).all()  # wrong spike times for each of them
    *_, forced = if_dynamics(current, fast=False)
    assert not bool(forced.any())


@pytest.mark.parametrize("make", [mlp, small_cnn])
def test_fast_equals_reference_dyadic_float32(make) -> None:
    """Exact arithmetic (dyadic weights and inputs): identical spikes and membranes, every layer."""
    layers = dyadic_net(make(), scale=0.5)
    shape = (5, 6) if make is mlp else (5, 2, 9, 9)
    x = dyadic(shape, 0.8, seed=7)
    for readout in ("robust", "rate"):
        fast = simulate_fast(layers, x, 60, readout=readout)
        ref = simulate_reference(layers, x, 60, readout=readout)
        assert fast.spike_counts.keys() == ref.spike_counts.keys()
        for key in ref.spike_counts:
            assert th.equal(fast.spike_counts[key], ref.spike_counts[key]), key
            assert th.equal(fast.final_potential[key], ref.final_potential[key]), key
        assert th.equal(fast.outputs, ref.outputs)
    assert any(f < 1.0 for f in fast.fast_fraction.values()) or all(f == 1.0 for f in fast.fast_fraction.values())


def dead_channel_cnn() -> list[nn.Module]:
    """Conv layers with channels that never fire (negative bias), a conv feeding a linear layer
    directly, and a linear layer with silent inputs: every input-pruning branch of the fast path."""
    layers = dyadic_net([nn.Conv2d(2, 6, 3, stride=2), nn.Flatten(), nn.Linear(6 * 4 * 4, 20), nn.Linear(20, 3)],
                        scale=0.5, seed=5)
    with th.no_grad():
        layers[0].bias[[1, 4]] = -8.0  # channels 1 and 4 of the first layer never fire
        layers[2].bias[:7] = -8.0  # 7 of 20 hidden features never fire
    return layers


def deep_dead_cnn() -> list[nn.Module]:
    layers = dyadic_net(small_cnn(), scale=0.5, seed=9)
    with th.no_grad():
        layers[0].bias[0] = -8.0  # a silent first-layer channel
        layers[1].bias[[2, 5]] = -8.0  # silent channels of a later conv layer
    return layers


def grouped_dead_cnn() -> list[nn.Module]:
    """A silent first-layer channel feeding a grouped convolution (the pruned channel is put back)."""
    layers = dyadic_net([nn.Conv2d(2, 4, 3, stride=2), nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 8), nn.Linear(8, 3)], scale=0.5, seed=13)
    with th.no_grad():
        layers[0].bias[0] = -8.0
    return layers


@pytest.fixture(params=["clamp-per-step", "cummax-and-check"])
def solver(request, monkeypatch) -> str:
    """Both ways of solving a layer's dynamics: the per-step clamp for every neuron (wide CPU layers)
    and the library cummax with an exact check and the clamp for the failing neurons (narrow / GPU)."""
    monkeypatch.setattr(simulation, "SMALL_SCAN", 0 if request.param == "clamp-per-step" else 10**9)
    return request.param


@pytest.mark.parametrize("make", [mlp, small_cnn, dead_channel_cnn, deep_dead_cnn, grouped_dead_cnn])
@pytest.mark.parametrize("readout", ["robust", "rate", "robust_hidden"])
@pytest.mark.parametrize("offset", [0.0, 1 / 128])
def test_fast_equals_reference_every_option(make, readout: str, offset: float, solver: str) -> None:
    """Dyadic weights, inputs and offset (every sum exact in float32): the fast path equals the
    per-step reference for every readout, with and without the rounding offset, on both solvers, with
    silent channels and features pruned from the time-batched products."""
    layers = make() if make in (dead_channel_cnn, deep_dead_cnn, grouped_dead_cnn) else dyadic_net(make(), scale=0.5)
    shape = (5, 6) if make is mlp else (5, 2, 9, 9)
    x = dyadic(shape, 0.8, seed=7).abs()
    for threshold in (1.0, 0.5):
        fast = simulate_fast(layers, x, 64, threshold, readout=readout, bias_offset=offset * threshold)
        ref = simulate_reference(layers, x, 64, threshold, readout=readout, bias_offset=offset * threshold)
        for key in ref.spike_counts:
            assert th.equal(fast.spike_counts[key], ref.spike_counts[key]), key
            assert th.equal(fast.final_potential[key], ref.final_potential[key]), key
        assert th.equal(fast.outputs, ref.outputs)
        assert th.equal(fast.mean_current, ref.mean_current)
    if make in (dead_channel_cnn, deep_dead_cnn, grouped_dead_cnn):
        assert (ref.spike_counts[0][:, 1 if make is dead_channel_cnn else 0] == 0).all()  # the pruned channels
    slow = simulate_fast(layers, x, 64, readout=readout, bias_offset=offset, fast=False)  # plain membrane loop
    exact = simulate_reference(layers, x, 64, readout=readout, bias_offset=offset)
    assert all(th.equal(slow.spike_counts[k], exact.spike_counts[k]) for k in exact.spike_counts)


def test_solver_paths_agree_with_membrane_loop(monkeypatch) -> None:
    """The per-step clamp n[t] = clamp(floor(S[t]), n[t-1], n[t-1] + 1) and cummax-and-check both give
    the membrane loop's counts, also where currents exceed the threshold (several spikes demanded)."""
    current = dyadic((120, 700), 0.5, seed=4)
    current[:15, :50] = 1.75
    loop_counts, loop_v = _if_loop(current, 1.0)
    for small in (0, 10**9):
        monkeypatch.setattr(simulation, "SMALL_SCAN", small)
        counts, v_final, valid = solve_cumulative(th.cumsum(current, 0))
        assert th.equal(counts, loop_counts[1:]) and th.equal(v_final, loop_v)
    assert not bool(valid[:50].any()) and bool(valid[50:].any())  # cummax-and-check: where the identity holds


def test_round_option_rounds_constant_current_counts() -> None:
    """rounding="round": V_thr/(2T) more bias per step turns n(T) = floor(T z) into floor(T z + 1/2)."""
    z = th.tensor([[0.0, 0.1, 0.2, 0.30078125, 0.5, 0.7421875, 0.99]])
    layer = nn.Linear(7, 7)
    with th.no_grad():
        layer.weight.copy_(th.eye(7))
        layer.bias.zero_()
    head = nn.Linear(7, 2)
    for steps in (16, 64):
        plain = simulate_fast([layer, head], z, steps).spike_counts[0]
        rounded = simulate_fast([layer, head], z, steps, bias_offset=1 / (2 * steps)).spike_counts[0]
        assert th.equal(plain, th.floor(steps * z))
        assert th.equal(rounded, th.floor(steps * z + 0.5))


def test_robust_hidden_readout_is_head_on_hidden_mean_current() -> None:
    layers = dyadic_net(mlp())
    x = dyadic((8, 6), 1.0, seed=11)
    ref = simulate_reference(layers, x, 32, readout="robust_hidden")
    hidden = simulate_reference(layers[:3], x, 32, readout="robust").outputs  # layer 2's mean current
    assert th.equal(ref.outputs, layers[3](th.relu(hidden)))
    with pytest.raises(ValueError, match="hidden layer"):
        simulate_fast([nn.Linear(6, 3)], x, 8, readout="robust_hidden")


@pytest.mark.parametrize("seed", range(3))
def test_fast_equals_reference_random_float64(seed: int) -> None:
    """Random (non-dyadic) networks and inputs in float64: identical spike counts."""
    th.manual_seed(seed)
    layers = [layer.double() for layer in small_cnn()]
    with th.no_grad():
        for layer in layers:
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                layer.weight.mul_(2.0)
    x = th.rand(4, 2, 9, 9, dtype=th.float64)
    fast = simulate_fast(layers, x, 80)
    ref = simulate_reference(layers, x, 80)
    for key in ref.spike_counts:
        assert th.equal(fast.spike_counts[key], ref.spike_counts[key])
    assert th.allclose(fast.outputs, ref.outputs)


def test_robust_readout_is_time_averaged_last_layer_current() -> None:
    """f = n(T)/T + V(T)/(T V_thr) equals (1/T) sum_t I_L[t] (reset by subtraction)."""
    layers = dyadic_net(mlp())
    x = dyadic((8, 6), 1.0, seed=11)
    for steps in (7, 50):
        ref = simulate_reference(layers, x, steps, readout="robust")
        assert th.allclose(ref.outputs, ref.mean_current, atol=1e-6)
        fast = simulate_fast(layers, x, steps, readout="robust")
        assert th.allclose(fast.outputs, fast.mean_current, atol=1e-6)
        rate = simulate_reference(layers, x, steps, readout="rate").outputs
        assert th.equal(rate * steps, ref.spike_counts[3])  # the rate readout is counts / T


# --- normalisation -----------------------------------------------------------------------------


def test_streaming_percentile_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal(100_003).astype(np.float32)
    for p in (0.0, 50.0, 99.0, 99.9, 99.99, 100.0):
        stream = StreamingPercentile(p, data.size)
        for chunk in np.array_split(data, 7):
            stream.add(th.as_tensor(chunk))
        assert stream.value() == pytest.approx(float(np.percentile(data.astype(np.float64), p)), rel=1e-12, abs=1e-12)


def test_streaming_percentile_beyond_torch_quantile_limit() -> None:
    """More than 2^24 values (torch.quantile refuses them), exact against numpy."""
    n = (1 << 24) + 1000
    rng = np.random.default_rng(1)
    stream = StreamingPercentile(99.9, n)
    parts = []
    for size in (1 << 23, 1 << 23, 1000):
        part = rng.random(size, dtype=np.float32)
        parts.append(part)
        stream.add(th.as_tensor(part))
    with pytest.raises(RuntimeError):
        th.quantile(th.as_tensor(np.concatenate(parts)), 0.999)
    assert stream.value() == pytest.approx(float(np.percentile(np.concatenate(parts).astype(np.float64), 99.9)), abs=1e-9)


# --- the policy ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_dqn() -> DQN:
    return DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [32, 32]}, learning_starts=10**6, seed=0)


def test_convert_dqn_plays_predicts_saves_loads(cartpole_dqn: DQN, tmp_path) -> None:
    policy = convert(cartpole_dqn, n_calibration=200, timesteps=30, percentile=99.9)
    assert isinstance(policy, ConvertedQPolicy) and len(policy.scales) == 3
    assert policy.metadata["n_calibration"] == 200
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs)
    assert np.ndim(action) == 0
    batch = np.stack([env.observation_space.sample() for _ in range(5)])
    actions, _ = policy.predict(batch)
    assert actions.shape == (5,)
    mean, _ = evaluate_policy(policy, env, n_eval_episodes=1, warn=False)
    assert mean > 0
    path = tmp_path / "policy.pt"
    policy.save(path)
    raw = th.load(path, weights_only=True)  # no pickle needed
    assert raw["format"] == "sb3-snn/policy" and raw["class"] == "ConvertedQPolicy"
    loaded = ConvertedQPolicy.load(path, device="cpu")
    assert np.array_equal(loaded.predict(batch)[0], actions)
    assert loaded.timesteps == 30 and loaded.scales == policy.scales
    loaded.load_state_dict(policy.state_dict())  # SB3's parameter API (state_dict) round trip


def test_threshold_divides_rates_and_leaves_weights_unscaled(cartpole_dqn: DQN) -> None:
    """Tan et al. Eq. 1: currents are ``W theta + b`` whatever ``V_thr``; a higher threshold lowers the rates
    (the scaling ``V_thr (W theta + b)`` the paper rejects would make the threshold a no-op)."""
    obs = np.random.default_rng(0).normal(0.0, 0.5, size=(200, 4)).astype(np.float32)
    one = convert(cartpole_dqn, calibration_obs=obs, timesteps=50, threshold=1.0)
    two = convert(cartpole_dqn, calibration_obs=obs, timesteps=50, threshold=2.0)
    for a, b in zip(one.state_dict().values(), two.state_dict().values(), strict=True):
        assert th.equal(a, b)  # same normalised weights and biases
    counts = {}
    for name, policy in (("one", one), ("two", two)):
        description = policy.spiking_description()
        counts[name] = sum(float(c.sum()) for c in simulate(description, obs[:50]).spike_counts.values())
    assert counts["two"] < 0.75 * counts["one"]


def test_round_and_robust_hidden_options_save_describe_export(cartpole_dqn: DQN, tmp_path) -> None:
    """The options survive save/load; rounding="round" is a bias in the spiking description (the
    reference simulation of the description gives the policy's counts; the NC64C chip model compiles
    it); a robust_hidden description is refused by a backend that reads only spikes."""
    from sb3_snn import backends
    from sb3_snn.backends import UnsupportedNetworkError

    obs = np.random.default_rng(3).uniform(-1, 1, size=(32, 4)).astype(np.float32)
    policy = convert(cartpole_dqn, calibration_obs=obs, timesteps=40, rounding="round")
    assert policy.rounding == "round" and policy.bias_offset == pytest.approx(1 / 80)
    path = tmp_path / "round.pt"
    policy.save(path)
    loaded = ConvertedQPolicy.load(path, device="cpu")
    assert loaded.rounding == "round" and np.array_equal(loaded.predict(obs)[0], policy.predict(obs)[0])
    assert policy.with_settings(timesteps=80).bias_offset == pytest.approx(1 / 160)
    description = policy.spiking_description()
    assert description.metadata["rounding"] == "round"
    assert np.allclose(description.layers[1].bias, policy.layers[1].bias.detach().numpy() + 1 / 80)
    assert np.array_equal(description.layers[-1].bias, policy.layers[-1].bias.detach().numpy())  # output: none
    result = simulate(description, obs)
    sim = policy.simulate(th.as_tensor(obs), dtype=th.float64)
    counts = policy.spike_counts_by_name(sim)
    for name, value in result.spike_counts.items():
        assert np.array_equal(value, counts[name]), name
    backends.load("nc64c").compile(description, obs)  # a bias: the chip model runs it
    hidden = policy.with_settings(readout="robust_hidden")
    assert hidden.spiking_description().readout == {"kind": "robust_hidden"}
    with pytest.raises(UnsupportedNetworkError, match="robust_hidden"):
        backends.load("nc64c").compile(hidden.spiking_description(), obs)
    with pytest.raises(NotImplementedError, match="robust_hidden"):
        simulate(hidden.spiking_description(), obs)  # the reference simulation of a description refuses it too
    with pytest.raises(ValueError, match="rounding"):
        convert(cartpole_dqn, calibration_obs=obs, rounding="ceil")


def test_converted_matches_ann_at_large_T(cartpole_dqn: DQN) -> None:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(64, 4)).astype(np.float32)
    policy = convert(cartpole_dqn, calibration_obs=obs, timesteps=400)
    q = cartpole_dqn.policy.q_net(th.as_tensor(obs))
    gap = (q.max(1).values - q.min(1).values).detach().numpy()
    clear = gap > 0.05 * gap.mean()  # skip near-ties
    ann = q.argmax(1).numpy()
    snn, _ = policy.predict(obs)
    assert (snn[clear] == ann[clear]).mean() >= 0.95


def test_spiking_description_simulates_to_same_actions(cartpole_dqn: DQN) -> None:
    rng = np.random.default_rng(2)
    obs = rng.uniform(-1, 1, size=(16, 4)).astype(np.float32)
    for readout in ("robust", "rate"):
        policy = convert(cartpole_dqn, calibration_obs=obs, timesteps=25, readout=readout)
        description = policy.spiking_description()
        assert description.encoding == {"kind": "analog"} and description.readout == {"kind": readout}
        assert all(layer.neuron.model == "IF" and layer.neuron.reset == "subtract" and layer.neuron.decay == 1.0
                   for layer in description.layers if layer.neuron is not None)
        result = simulate(description, obs)
        sim = policy.simulate(th.as_tensor(obs), dtype=th.float64)
        assert np.array_equal(result.actions, sim.outputs.argmax(1).numpy())
        assert np.array_equal(result.actions, policy.predict(obs)[0])
        counts = policy.spike_counts_by_name(sim)
        for name, value in result.spike_counts.items():
            assert np.array_equal(value, counts[name]), name
        cost = count_operations(description, counts)
        assert cost.synops > 0 and cost.input_macs == 4 * 32 * 25


def test_nature_cnn_description_and_policy_agree() -> None:
    space = spaces.Box(0, 255, (1, 36, 36), np.uint8)
    q_policy = DQNPolicy(space, spaces.Discrete(3), lambda _: 0.0, features_extractor_class=NatureCNN,
                         features_extractor_kwargs={"features_dim": 16})
    source = extract_network(q_policy)
    assert [type(layer).__name__ for layer in source.layers] == ["Conv2d", "Conv2d", "Conv2d", "Flatten", "Linear", "Linear"]
    obs = np.random.default_rng(0).integers(0, 255, size=(6, 1, 36, 36), dtype=np.uint8)
    policy = convert(q_policy, calibration_obs=obs, timesteps=12)
    description = policy.spiking_description()
    x = obs.astype(np.float64) / 255.0
    simulated = policy.simulate(th.as_tensor(obs), dtype=th.float64).outputs.argmax(1).numpy()
    assert np.array_equal(simulate(description, x).actions, simulated)
    channel_last = np.transpose(obs, (0, 2, 3, 1))
    assert np.array_equal(policy.predict(channel_last)[0], policy.predict(obs)[0])


def test_qrdqn_mean_over_quantiles_is_folded() -> None:
    from sb3_contrib import QRDQN

    model = QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16], "n_quantiles": 5}, learning_starts=10**6)
    source = extract_network(model)
    obs = th.rand(10, 4)
    expected = model.policy.quantile_net(obs).mean(dim=1)
    assert th.allclose(source.q_values(obs), expected, atol=1e-6)
    policy = convert(model, calibration_obs=obs.numpy(), timesteps=10)
    assert policy.action_space.n == 2 and policy.layers[-1].out_features == 2


def test_unsupported_layer_is_named() -> None:
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8], "activation_fn": nn.Tanh})
    with pytest.raises(ValueError, match=r"'q_net\.1' \(Tanh\)"):
        convert(model, calibration_obs=np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="Discrete"):
        extract_network(PPO("MlpPolicy", "Pendulum-v1").policy)

"""The NC64C chip model: spec, fit check, mapping, quantisation, integer simulation, estimates."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_snn_nc64c import ChipSpec, check_fit, map_network, quantize_network, simulate_integer
from sb3_snn_nc64c.spec import PROVENANCE

from sb3_snn import backends
from sb3_snn.backends import FitError, Layer, NeuronPopulation, SpikingDescription, UnsupportedNetworkError, examples
from sb3_snn.backends import reference_simulate as simulate

#: bit widths at which the model is numerically faithful (the semantic equivalence check)
WIDE = dict(weight_bits=20, input_bits=20, membrane_bits=50)


def _agreement(description, n=200, seed=1, **spec):
    obs = examples.example_observations(description, n, seed)
    deployment = backends.load("nc64c", **spec).compile(description, obs)
    test = examples.example_observations(description, n, seed + 1)
    return backends.agreement(deployment.run(test), simulate(description, test).actions), deployment


def test_spec_labels_every_default_fact_or_assumption():
    spec = ChipSpec()
    rows = {row[0]: row for row in spec.provenance_rows()}
    assert rows["n_cores"][1:3] == [64, "inference"]
    assert all(rows[key][2] == "assumption" for key in PROVENANCE if key not in ("n_cores", "name"))
    assert "PAICORE" in rows["neurons_per_core"][3] and "Loihi" in rows["energy_per_synop_pj"][3]
    changed = {row[0]: row for row in spec.with_overrides(weight_bits=4).provenance_rows()}
    assert changed["weight_bits"][2] == "user"
    with pytest.raises(TypeError, match="unknown ChipSpec parameters"):
        spec.with_overrides(weight_bit=4)
    with pytest.raises(ValueError, match="weight_bits"):
        ChipSpec(weight_bits=1)
    assert ChipSpec.from_dict(spec.to_dict()) == spec


def _linear(name, n_in, n_out, neuron=None):
    rng = np.random.default_rng(0)
    return Layer(name, "linear", (n_in,), (n_out,), rng.standard_normal((n_out, n_in)), np.zeros(n_out),
                 neuron=neuron or NeuronPopulation("IF"))


def _net(*layers, encoding=None):
    return SpikingDescription(list(layers), layers[0].input_shape, encoding or {"kind": "analog"}, 4, {"kind": "rate"},
                              layers[-1].output_shape[0])


def test_fan_in_too_large_names_layer_resource_and_limit():
    with pytest.raises(FitError) as info:
        check_fit(_net(_linear("fc0", 4, 16), _linear("wide", 16, 8)), ChipSpec(axons_per_core=8))
    error = info.value
    assert (error.layer, error.resource, error.required, error.limit) == ("wide", "fan-in (axons per core)", 16, 8)
    assert "layer 'wide'" in str(error) and "fan-in (axons per core) needs 16, limit is 8" in str(error)


def test_too_many_cores_names_the_whole_networks_need_and_the_limit():
    net = _net(_linear("fc0", 4, 2048), _linear("fc1", 2048, 2))
    with pytest.raises(FitError, match=r"layer 'network' does not fit NC64C: cores needs 129, limit is 64 "
                                       r"\(cores per layer: fc0 128, fc1 1;"):
        check_fit(net, ChipSpec(neurons_per_core=16, axons_per_core=4096))
    with pytest.raises(FitError, match=r"layer 'fc1'.*fan-in \(axons per core\) needs 2048, limit is 1152"):
        backends.load("nc64c").compile(net, np.zeros((2, 4)))


def test_conv_fan_in_and_unsupported_models_are_refused():
    conv = examples.conv_like()
    with pytest.raises(FitError, match=r"layer 'conv0'.*fan-in \(axons per core\) needs 18, limit is 16"):
        check_fit(conv, ChipSpec(axons_per_core=16))
    # temporal (CVTC) neurons run beta-free, with their population code and spike-time readout
    # (test_nc64c_cvtc.py); anything else about them is named
    temporal = _net(_linear("fc0", 4, 8, NeuronPopulation("temporal", params={"beta": 1e-3})))
    with pytest.raises(UnsupportedNetworkError, match=r"'analog' input encoding.*temporal neurons take"):
        check_fit(temporal, ChipSpec())
    hidden_readout = _net(_linear("fc0", 4, 8, NeuronPopulation("nonspiking", reset="none")), _linear("fc1", 8, 2))
    with pytest.raises(UnsupportedNetworkError, match=r"fc0.*non-spiking hidden layer"):
        check_fit(hidden_readout, ChipSpec())
    with pytest.raises(UnsupportedNetworkError, match="population_temporal"):
        check_fit(_net(_linear("fc0", 4, 2), encoding={"kind": "population_temporal"}), ChipSpec())


def test_mapping_splits_large_layers_into_feature_patches():
    description = examples.conv_like()  # conv0: 8 x 8 x 8 = 512 neurons
    spec = ChipSpec(neurons_per_core=64, axons_per_core=512)
    mapping = map_network(description, spec)
    conv_cores = [c for c in mapping.cores if c.layer == "conv0"]
    assert len(conv_cores) == mapping.plans["conv0"].n_cores > 1
    assert sum(c.neurons for c in conv_cores) == 512
    assert all(c.neurons <= 64 and c.axons <= 512 for c in mapping.cores)
    assert all(c.axons < 2 * 16 * 16 for c in conv_cores)  # a patch reads only its input window
    # the patches' synapses add up to the conv's connections: per axis 2 + 7 * 3 = 23 valid taps (padding 1, stride 2)
    assert sum(c.synapses for c in conv_cores) == 23 * 23 * 2 * 8
    fc1 = [c for c in mapping.cores if c.layer == "fc1"]
    assert [c.patch for c in fc1] == ["out[0:32]"] and fc1[0].axons == 512
    report = backends.load("nc64c", neurons_per_core=64, axons_per_core=1152).compile(
        description, examples.example_observations(description, 8)).report()
    cores = report.section("cores")
    assert cores.columns == ["core", "layer", "patch", "neurons", "axons", "synapses", "memory KiB"]
    assert len(cores.rows) == report.section("summary").rows[0][1] > 3


def test_quantisation_uses_integer_formats_and_exact_thresholds():
    description = examples.sdn_like()
    spec = ChipSpec(weight_bits=6)
    network = quantize_network(description, spec, examples.example_observations(description, 64))
    for layer in network.layers:
        if layer.weight is None:
            continue
        assert np.issubdtype(layer.weight.dtype, np.integer) and np.abs(layer.weight).max() <= 31
        assert layer.decay == round(0.5 * 2**spec.leak_bits)
        if layer.model == "LIF":
            np.testing.assert_allclose(layer.threshold * layer.unit, 1.0)  # threshold exact in membrane units
    assert network.layers[-1].threshold is None  # the non-spiking readout has none


def test_integer_simulation_is_exact_for_an_exactly_representable_network():
    """Integer weights, threshold 127 and integer inputs in [-127, 127]: bit-for-bit the float reference."""
    rng = np.random.default_rng(3)
    layers = []
    for k, (n_in, n_out) in enumerate([(4, 32), (32, 32), (32, 3)]):
        w = rng.integers(-127, 128, (n_out, n_in)).astype(float)
        w[:, 0] = 127  # every row peaks at 127, so K = threshold = 127 and one unit = 1.0
        layers.append(Layer(f"fc{k}", "linear", (n_in,), (n_out,), w, rng.integers(-20, 20, n_out).astype(float),
                            neuron=NeuronPopulation("IF", threshold=127.0, reset="subtract")))
    description = SpikingDescription(layers, (4,), {"kind": "analog"}, 16, {"kind": "robust"}, 3)
    obs = rng.integers(-127, 128, (64, 4)).astype(float)
    obs[0] = 127  # calibrated input scale is exactly 1
    network = quantize_network(description, ChipSpec(weight_bits=8, input_bits=8), obs, margin=1.0)
    result, reference = simulate_integer(network, obs), simulate(description, obs)
    for name in reference.spike_counts:
        np.testing.assert_array_equal(result.spike_counts[name], reference.spike_counts[name])
    np.testing.assert_allclose(result.outputs, reference.outputs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [examples.converted_like, examples.sdn_like,
                                  lambda: examples.sdn_like(encoding="analog"), examples.conv_like],
                         ids=["converted_like", "sdn_like_frames", "sdn_like_analog", "conv_like"])
def test_integer_simulation_matches_float_semantics(make):
    """At wide formats the integer model converges to the float reference (same semantics, no drift)."""
    description = make()
    wide, _ = _agreement(description, n=150, **WIDE)
    assert wide >= 0.99
    default, deployment = _agreement(description, n=150)
    # default formats (16-bit weights, 12-bit inputs); see docs/hardware.md
    assert default >= 0.97
    assert sum(deployment.calibration["saturations"].values()) == 0


def test_report_prints_estimates_with_assumptions_and_context_rows():
    description = examples.converted_like(hidden=(32,), timesteps=16)
    deployment = backends.load("nc64c").compile(description, examples.example_observations(description, 32),
                                                action_rate_hz=100.0)
    text = str(deployment.report())
    for expected in ("SynOps per action", "energy per action", "latency per action", "power at 100 actions/s",
                     "RTX 2080", "RTX 8000", "Jetson Xavier NX", "0.103", "1.429", "assumption", "Loihi"):
        assert expected in text
    energy = deployment.energy
    assert energy.power_w == pytest.approx(energy.energy_uj * 1e-6 * 100.0)
    assert energy.synops > 0 and energy.latency_us >= 16 * ChipSpec().min_timestep_us
    rows = {row[0]: row for row in deployment.report().section("cost estimate (per action)").rows}
    assert rows["context: DNN on RTX 2080"][1] == 64.0 and rows["context: SDN student on NC64C"][1] == 0.103


# --- trained CartPole policies: agreement at the default widths on environment observations -------------


def _env_observations(policy_actions, n: int, seed: int) -> np.ndarray:
    """Observations of CartPole-v1 played greedily by ``policy_actions`` (a batch -> actions function)."""
    import gymnasium as gym

    env, frames = gym.make("CartPole-v1"), []
    obs, _ = env.reset(seed=seed)
    while len(frames) < n:
        frames.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(policy_actions(obs[None].astype(np.float64))[0]))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(frames, dtype=np.float64)


@pytest.fixture(scope="module")
def cartpole_dqn():
    """A small DQN trained on CartPole-v1 for 2k steps (seconds on one core)."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=200, train_freq=4, target_update_interval=200,
                exploration_fraction=0.5, policy_kwargs=dict(net_arch=[64, 64]), seed=0, device="cpu")
    return model.learn(2000)


def _check_default_agreement(description, example_obs: np.ndarray, seed: int) -> None:
    """Compile at the default spec; >= 99 % equal greedy actions on held-out and on the deployment's own states."""
    deployment = backends.load("nc64c").compile(description, example_obs)
    assert sum(deployment.calibration["saturations"].values()) == 0
    held_out = _env_observations(lambda o: simulate(description, o).actions, 300, seed)
    own = _env_observations(deployment.run, 300, seed + 1)  # the integer policy's own trajectory
    for obs in (held_out, own):
        assert backends.agreement(deployment.run(obs), simulate(description, obs).actions) >= 0.99


def test_converted_cartpole_dqn_agrees_at_default_widths(cartpole_dqn):
    from sb3_snn import convert

    policy = convert(cartpole_dqn, env=cartpole_dqn.get_env(), timesteps=32, n_calibration=300)
    description = policy.spiking_description()
    example = _env_observations(lambda o: simulate(description, o).actions, 300, seed=10)
    _check_default_agreement(description, example, seed=20)


def test_sdn_cartpole_student_agrees_at_default_widths(cartpole_dqn):
    import gymnasium as gym

    from sb3_snn import SDN

    student = SDN("SDNPolicy", gym.make("CartPole-v1"), teacher=cartpole_dqn, learning_starts=100, batch_size=32,
                  buffer_size=2000, seed=0, device="cpu").learn(600)
    description = student.policy.spiking_description()
    example = _env_observations(lambda o: simulate(description, o).actions, 300, seed=30)
    _check_default_agreement(description, example, seed=40)

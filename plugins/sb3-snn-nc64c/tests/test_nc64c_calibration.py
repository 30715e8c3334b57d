"""The NC64C deployment as a policy: observation shapes, calibration that warns, held-out agreement, precision."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sb3_snn_nc64c import ChipSpec, quantize_network, simulate_integer
from sb3_snn_nc64c.deployment import MIN_CALIBRATION_OBS, CalibrationWarning

from sb3_snn import backends
from sb3_snn.backends import Layer, NeuronPopulation, SpikingDescription, examples
from sb3_snn.backends import reference_simulate as simulate


def _exact_network(seed: int = 3) -> tuple[SpikingDescription, np.ndarray]:
    """Integer weights, threshold 127, integer inputs in [-127, 127]: at 8-bit widths the integer model
    is bit-for-bit the float reference (input scale 1 from the calibrated range, no margin)."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate([(4, 32), (32, 32), (32, 3)]):
        w = rng.integers(-127, 128, (n_out, n_in)).astype(float)
        w[:, 0] = 127
        layers.append(Layer(f"fc{k}", "linear", (n_in,), (n_out,), w, rng.integers(-20, 20, n_out).astype(float),
                            neuron=NeuronPopulation("IF", threshold=127.0, reset="subtract")))
    obs = rng.integers(-127, 128, (64, 4)).astype(float)
    obs[0] = 127
    return SpikingDescription(layers, (4,), {"kind": "analog"}, 16, {"kind": "robust"}, 3), obs


def test_run_takes_one_observation_or_a_batch_and_matches_the_reference():
    description, obs = _exact_network()
    with pytest.warns(CalibrationWarning, match="64 observation"):
        deployment = backends.load("nc64c", weight_bits=8, input_bits=8).compile(
            description, obs, eval_obs=obs, input_margin=1.0)
    reference = simulate(description, obs).actions
    batched = deployment.run(obs)
    single = [deployment.run(o) for o in obs]
    assert batched.shape == (64,) and all(np.asarray(a).shape == () for a in single)
    np.testing.assert_array_equal(np.array([int(a) for a in single]), batched)
    np.testing.assert_array_equal(batched, reference)
    assert len(set(reference.tolist())) > 1  # the network does not answer one action everywhere
    assert deployment.simulate(obs[0]).outputs.shape == (1, 3)
    with pytest.raises(ValueError, match=r"observation shape \(4, 3\) is neither one observation \(4,\) nor a batch"):
        deployment.run(np.zeros((4, 3)))


def test_one_example_observation_warns_about_calibration():
    description = examples.converted_like(hidden=(16,), timesteps=16)
    obs = examples.example_observations(description, 1)
    with pytest.warns(CalibrationWarning) as caught:
        deployment = backends.load("nc64c").compile(description, obs[0])  # one observation, shape (4,)
    messages = " ".join(str(w.message) for w in caught)
    assert "calibration" in messages and "1 observation(s)" in messages and f"at least {MIN_CALIBRATION_OBS}" in messages
    assert "no observation is left to measure the agreement" in messages
    assert deployment.calibration["agreement"] is None and deployment.calibration["n_agreement_obs"] == 0
    assert "not measured" in str(deployment.report())
    assert issubclass(CalibrationWarning, UserWarning)


def test_enough_observations_or_a_recorded_bound_do_not_warn_about_the_input_range():
    description = examples.converted_like(hidden=(16,), timesteps=8)
    obs = examples.example_observations(description, MIN_CALIBRATION_OBS + 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        backends.load("nc64c").compile(description, obs[:MIN_CALIBRATION_OBS], eval_obs=obs[MIN_CALIBRATION_OBS:])
    description.metadata["input_bound"] = [3.0, 4.5, 0.3, 4.5]
    with pytest.warns(CalibrationWarning) as caught:
        deployment = backends.load("nc64c").compile(description, obs[:8], eval_obs=obs[8:40])
    message = str(caught[0].message)
    assert "8 observation(s) calibrate the rounding statistics" in message and "input range" not in message
    np.testing.assert_allclose(deployment.network.input_scale, np.array([3.0, 4.5, 0.3, 4.5]) / ChipSpec().input_max)


def test_report_agreement_is_measured_on_held_out_observations():
    description = examples.converted_like(hidden=(16,), timesteps=16)
    obs = examples.example_observations(description, 300)
    with pytest.warns(CalibrationWarning, match="240 observation"):
        deployment = backends.load("nc64c").compile(description, obs)  # default holdout: the last 20 %
    cal = deployment.calibration
    assert (cal["n_calibration_obs"], cal["n_agreement_obs"], cal["agreement_measured_on"]) == (
        240, 60, "held-out example_obs")
    expected = backends.agreement(deployment.run(obs[240:]), simulate(description, obs[240:]).actions)
    assert cal["agreement"] == expected
    row = {r[0]: r for r in deployment.report().section("summary").rows}["agreement with float SNN"]
    assert "60 held-out obs" in row[2] and "not used to calibrate" in row[2]
    test = examples.example_observations(description, 50, seed=9)
    with pytest.warns(CalibrationWarning):
        separate = backends.load("nc64c").compile(description, obs[:100], eval_obs=test)
    assert (separate.calibration["n_calibration_obs"], separate.calibration["n_agreement_obs"]) == (100, 50)
    assert separate.calibration["agreement_measured_on"] == "eval_obs"
    with pytest.raises(ValueError, match=r"holdout must be in \[0, 1\)"):
        backends.load("nc64c").compile(description, obs, holdout=1.0)


def test_saved_deployment_keeps_the_held_out_figures(tmp_path):
    description = examples.converted_like(hidden=(16,), timesteps=8)
    obs = examples.example_observations(description, 320)
    with pytest.warns(CalibrationWarning, match="256 observation"):
        deployment = backends.load("nc64c").compile(description, obs)
    loaded = backends.load("nc64c").load_deployment(deployment.save(tmp_path / "art"))
    assert loaded.calibration["n_agreement_obs"] == 64
    assert int(loaded.run(obs[0])) == int(deployment.run(obs[0]))


@pytest.fixture(scope="module")
def zoo_like_cartpole_t200():
    """A 32 x 32 DQN trained 4000 steps with rl_zoo3's CartPole-v1 hyperparameters (~10 s on one core), converted at
    T = 200, with 300 calibration states and 2000 held-out states (other episodes, epsilon 0.05)."""
    import torch as th
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn import convert
    from sb3_snn.conversion import collect_calibration_frames, extract_network

    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        zoo = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=10_000, learning_starts=1000, gamma=0.99,
                   target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                   exploration_final_eps=0.04)
        model = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), policy_kwargs=dict(net_arch=[32, 32]),
                    seed=0, device="cpu", **zoo).learn(4000)
        policy = convert(model, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), timesteps=200, n_calibration=300)
        obs = collect_calibration_frames(extract_network(model), make_vec_env("CartPole-v1", n_envs=1, seed=1), 2300,
                                         0.05, 1).astype(np.float64)
    finally:
        th.set_num_threads(threads)
    return policy.spiking_description(), obs[:300], obs[300:]


def test_first_layer_keeps_its_weight_precision_at_t200(zoo_like_cartpole_t200):
    """The membrane head-room of the analog-input layer does not grow with T: its 16-bit weights keep >= 13 bits
    (a head-room of T + 1 worst-case currents left about 8 bits at T = 200)."""
    description, calibration, _ = zoo_like_cartpole_t200
    network = quantize_network(description, ChipSpec(), calibration)
    first = next(layer for layer in network.layers if layer.weight is not None)
    assert np.abs(first.weight).max(axis=1).min() >= 2**13


def test_converted_zoo_dqn_at_t200_agrees_on_held_out_and_near_tie_states(zoo_like_cartpole_t200):
    """>= 99 % on 2000 held-out states and on the 300 of them whose float Q-values are closest (gap ~1e-3)."""
    description, calibration, held_out = zoo_like_cartpole_t200
    with pytest.warns(CalibrationWarning, match="300 observation"):  # fewer than MIN_CALIBRATION_OBS, on purpose
        deployment = backends.load("nc64c").compile(description, calibration, eval_obs=held_out)
    reference = simulate(description, held_out)
    actions = deployment.run(held_out)
    hardest = np.argsort(np.abs(np.diff(reference.outputs, axis=1)).ravel())[:300]
    assert backends.agreement(actions, reference.actions) >= 0.99
    assert backends.agreement(actions[hardest], reference.actions[hardest]) >= 0.99
    assert deployment.calibration["agreement"] == backends.agreement(actions, reference.actions)
    assert sum(deployment.calibration["saturations"].values()) == 0
    result = simulate_integer(deployment.network, held_out)
    np.testing.assert_array_equal(result.actions, actions)


def test_saturation_of_the_constant_input_layer_changes_no_spike(zoo_like_cartpole_t200):
    """The first layer's head-room is two step currents, not T + 1: its membrane saturates, and the same
    integer network simulated with a 50-bit membrane (no saturation at all) gives identical spikes and outputs."""
    from dataclasses import replace

    description, calibration, held_out = zoo_like_cartpole_t200
    network = quantize_network(description, ChipSpec(), calibration)
    narrow = simulate_integer(network, held_out)
    wide = simulate_integer(replace(network, spec=network.spec.with_overrides(membrane_bits=50)), held_out)
    assert sum(narrow.harmless_saturations.values()) > 0 and sum(narrow.saturations.values()) == 0
    assert sum(wide.harmless_saturations.values()) == 0
    for name in wide.spike_counts:
        np.testing.assert_array_equal(narrow.spike_counts[name], wide.spike_counts[name])
    np.testing.assert_array_equal(narrow.outputs, wide.outputs)

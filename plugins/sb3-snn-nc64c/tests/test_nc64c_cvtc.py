"""Beta-free CVTC (time-to-first-spike) networks on the NC64C model: check, quantise, simulate, cost, save."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_snn_nc64c import ChipSpec, check_fit
from sb3_snn_nc64c.temporal import TemporalDeployment, dt_range, simulate_temporal_grid

from sb3_snn import backends
from sb3_snn.backends import UnsupportedNetworkError, reference_simulate
from sb3_snn.cvtc.policies import CVTCPolicy

#: bit widths at which the integer simulation is numerically the float one on the same grid
WIDE = dict(weight_bits=24, membrane_bits=40)


def _policy(inference: str = "mostafa") -> CVTCPolicy:
    """A tiny untrained CartPole CVTC policy (20 inputs, 8 hidden, 2 outputs) whose two outputs compete:
    the second output's weights are the first's in reverse hidden order, so the action depends on the state."""
    env = gym.make("CartPole-v1")
    th.manual_seed(6)
    policy = CVTCPolicy(
        env.observation_space,
        env.action_space,
        lambda _: 1e-3,
        net_arch=[8],
        beta=1e-4,
        q_sign=1,
        encoder=dict(auto=True, n_points=5),
    )
    with th.no_grad():
        hidden, out = policy.q_net.layers[0].weight, policy.q_net.layers[1].weight
        hidden += 0.3 / hidden.shape[1]
        out[1] = out[0].flip(0)
    policy.set_inference(inference)
    return policy


def _states(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 4)) * np.array([2.4, 2.0, 0.2, 2.0])


@pytest.fixture(scope="module")
def tiny():
    policy = _policy()
    return policy, policy.spiking_description()


def test_compiles_and_reports_cost_and_fit(tiny):
    policy, description = tiny
    deployment = backends.load("nc64c").compile(policy, _states(100))
    assert isinstance(deployment, TemporalDeployment)
    metrics = deployment.report().metrics
    assert metrics["cores"] == check_fit(description, ChipSpec()) == 2
    assert metrics["synops_per_action"] > 0 and metrics["energy_per_action_uj"] > 0 and metrics["latency_us"] > 0
    assert metrics["temporal_dt"] == pytest.approx(ChipSpec().temporal_dt, rel=0.05)  # the step d_q represents
    assert metrics["agreement"] >= 0.95  # 20 held-out states at the default resolution
    text = str(deployment.report())
    assert "current-based" in text and "synaptic_current" in text and "temporal_dt" in text


def test_one_observation_and_a_batch_agree(tiny):
    _, description = tiny
    deployment = backends.load("nc64c", temporal_dt=0.05).compile(description, _states(50))
    states = _states(20, seed=3)
    batch = deployment.run(states)
    assert batch.shape == (20,)
    singles = [deployment.run(state) for state in states]
    assert all(single.shape == () for single in singles)
    np.testing.assert_array_equal(np.array(singles), batch)


def test_integer_simulation_is_the_float_one_on_the_same_grid(tiny):
    _, description = tiny
    states = _states(200, seed=4)
    for dt in (0.3, 0.05):
        spec = ChipSpec(temporal_dt=dt, **WIDE)
        grid = simulate_temporal_grid(description, spec, states)
        integer = backends.load("nc64c", spec=spec).compile(description, states[:20]).simulate(states)
        for name, steps in grid.spike_steps.items():
            np.testing.assert_array_equal(integer.spike_steps[name], steps, err_msg=f"{name} at dt={dt}")
        np.testing.assert_allclose(integer.q_values, grid.q_values)
    # at the default widths the quantised weights change almost no spike step
    spec = ChipSpec(temporal_dt=0.05)
    grid = simulate_temporal_grid(description, spec, states)
    integer = backends.load("nc64c", spec=spec).compile(description, states[:20]).simulate(states)
    assert (integer.actions == grid.actions).mean() >= 0.99


def test_agreement_with_the_float_policy_improves_with_resolution(tiny):
    policy, description = tiny
    states = _states(300, seed=5)
    reference = reference_simulate(description, states).actions
    with th.no_grad():  # the float beta-free policy itself
        np.testing.assert_array_equal(policy.q_net(th.as_tensor(states, dtype=th.float32)).argmax(1).numpy(), reference)
    figures = {}
    for dt in (1.0, 0.1, 0.01):
        deployment = backends.load("nc64c").compile(description, states[:20], temporal_dt=dt)
        figures[dt] = backends.agreement(deployment.run(states), reference)
    assert figures[1.0] < figures[0.1] <= figures[0.01]
    assert figures[0.01] >= 0.97


def test_bad_resolutions_are_refused_with_the_allowed_range(tiny):
    _, description = tiny
    backend = backends.load("nc64c")
    for bad in (0.0, -0.1, 2.0, float("nan")):
        with pytest.raises(ValueError, match=r"temporal_dt must be in \(0, 1\]"):
            backend.compile(description, _states(4), temporal_dt=bad)
    finest, coarsest = dt_range(ChipSpec())
    assert coarsest == 1.0 and 0 < finest < 1e-3
    with pytest.raises(ValueError, match=r"temporal_dt must be in \[0.000122, 1\].*12-bit decay.*got 1e-05"):
        backend.compile(description, _states(4), temporal_dt=1e-5)
    with pytest.raises(ValueError, match=r"temporal_dt must be in \[0.00784, 1\].*6-bit decay.*got 0.005"):
        check_fit(description, ChipSpec(leak_bits=6, temporal_dt=0.005))


def test_what_the_chip_model_cannot_run_is_named():
    beta = _policy("beta").spiking_description()
    with pytest.raises(UnsupportedNetworkError, match=r"layer 'cvtc0'.*beta term.*set_inference\('mostafa'\)"):
        backends.load("nc64c").compile(beta, _states(4))
    mostafa = _policy().spiking_description()
    with pytest.raises(UnsupportedNetworkError, match=r"synaptic_current=False"):
        check_fit(mostafa, ChipSpec(synaptic_current=False))
    with pytest.raises(UnsupportedNetworkError, match=r"leak_bits = 0"):
        check_fit(mostafa, ChipSpec(leak_bits=0))
    mostafa.readout = {**mostafa.readout, "kind": "rate"}
    with pytest.raises(UnsupportedNetworkError, match=r"'rate' readout.*first spike"):
        check_fit(mostafa, ChipSpec())


def test_save_and_load_give_the_same_actions(tiny, tmp_path):
    _, description = tiny
    backend = backends.load("nc64c", temporal_dt=0.05)
    deployment = backend.compile(description, _states(30))
    loaded = backend.load_deployment(deployment.save(tmp_path / "cvtc"))
    assert isinstance(loaded, TemporalDeployment)
    states = _states(40, seed=7)
    np.testing.assert_array_equal(loaded.run(states), deployment.run(states))
    assert loaded.report().metrics == deployment.report().metrics

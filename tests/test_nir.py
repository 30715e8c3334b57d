"""The ``nir`` backend: graph contents, the reset-by-subtraction refusal, round trips, spikingjelly's importer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from sb3_snn import backends  # noqa: E402
from sb3_snn.backends import NeuronPopulation, UnsupportedNetworkError, examples  # noqa: E402
from sb3_snn.backends import reference_simulate as simulate  # noqa: E402
from sb3_snn.backends.nir_backend import DEFAULT_DT, from_nir, spikingjelly_outputs, to_nir  # noqa: E402


def _all_spiking_lif(decay=0.5):
    """LIF / reset-to-zero in every layer (the SDN shape with a spiking output layer and the rate readout)."""
    description = examples.sdn_like(encoding="analog", hidden=(32, 32), decay=decay, timesteps=16)
    description.layers[-1].neuron = NeuronPopulation("LIF", threshold=1.0, decay=decay, reset="zero")
    description.readout = {"kind": "rate"}
    return description


def _if_zero_conv():
    description = examples.conv_like()
    for layer in description.layers:
        if layer.neuron is not None:
            layer.neuron.reset = "zero"
    return description


def test_reset_by_subtraction_is_refused_with_the_reason():
    description = examples.converted_like(hidden=(8,), timesteps=4)
    with pytest.raises(UnsupportedNetworkError, match=r"layer 'fc0'.*NIR has no reset by subtraction.*approximate_reset"):
        backends.load("nir").compile(description, examples.example_observations(description, 4))


def test_approximation_is_explicit_and_measured(tmp_path):
    description = examples.converted_like(hidden=(16,), timesteps=16)
    obs = examples.example_observations(description, 64)
    deployment = backends.load("nir", approximate_reset=True).compile(description, obs)
    assert deployment.approximations == [f"fc{k}: reset by subtraction written as reset to 0" for k in range(2)]
    assert deployment.exported.layers[0].neuron.reset == "zero"
    report = str(deployment.report())
    assert "approximation: fc0: reset by subtraction written as reset to 0" in report
    assert 0.0 <= deployment.calibration["agreement"] <= 1.0


def test_lif_network_file_reads_back_with_expected_nodes(tmp_path):
    description = examples.sdn_like()  # frames, LIF reset zero, non-spiking readout
    obs = examples.example_observations(description, 64)
    deployment = backends.load("nir").compile(description, obs)
    path = deployment.save(tmp_path / "nir")
    graph = nir.read(path / "model.nir")
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "flatten": "Flatten", "fc0": "Affine", "fc0_neuron": "LIF", "fc1": "Affine",
                     "fc1_neuron": "LIF", "fc2": "Affine", "fc2_neuron": "LI", "output": "Output"}
    assert ("fc1_neuron", "fc2") in [tuple(e) for e in graph.edges]
    lif = graph.nodes["fc0_neuron"]
    # decay 0.5: tau = dt / (1 - decay), r = tau / dt, v_leak = 0
    np.testing.assert_allclose(lif.tau, 2 * DEFAULT_DT)
    np.testing.assert_allclose(lif.r, 2.0)
    np.testing.assert_allclose(lif.v_leak, 0.0)
    np.testing.assert_allclose(lif.v_threshold, 1.0)
    np.testing.assert_allclose(graph.nodes["fc0"].weight, description.layers[1].weight)
    # the graph's own network (rebuilt by from_nir) is the original one
    assert deployment.calibration["agreement"] == 1.0
    rebuilt = from_nir(graph)
    np.testing.assert_allclose(simulate(rebuilt, obs).outputs, simulate(description, obs).outputs, atol=1e-12)
    loaded = backends.load("nir").load_deployment(path)
    np.testing.assert_array_equal(loaded.run(obs), deployment.run(obs))


def test_tampered_nir_file_is_refused(tmp_path):
    description = _all_spiking_lif()
    path = backends.load("nir").compile(description, examples.example_observations(description, 8)).save(tmp_path / "n")
    data = bytearray((path / "model.nir").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "model.nir").write_bytes(bytes(data))
    with pytest.raises(backends.ArtifactError, match=r"model.nir: checksum mismatch"):
        backends.load("nir").load_deployment(path)


@pytest.mark.parametrize("make", [_all_spiking_lif, lambda: _all_spiking_lif(decay=0.9), _if_zero_conv],
                         ids=["lif_0.5", "lif_0.9", "if_zero_conv"])
def test_spikingjelly_rebuilds_the_same_network(make):
    """spikingjelly's NIR importer (LIFNode(decay_input=False) / IFNode hard reset) gives the same actions."""
    description = make()
    obs = examples.example_observations(description, 128)
    graph = to_nir(description)
    outputs = spikingjelly_outputs(graph, description, obs)
    reference = simulate(description, obs)
    np.testing.assert_array_equal(outputs.argmax(axis=1), reference.actions)
    np.testing.assert_allclose(outputs, reference.outputs, atol=1e-9)


def test_spikingjelly_cannot_import_a_non_spiking_readout():
    """A documented limit: spikingjelly 2.0 maps no NIR ``LI``/``I`` node (the SDN student's readout layer)."""
    description = examples.sdn_like(hidden=(8,))
    with pytest.raises(ValueError, match="LI"):
        spikingjelly_outputs(to_nir(description), description, examples.example_observations(description, 4))


def test_temporal_neurons_in_a_discrete_time_network_are_refused():
    description = examples.sdn_like(hidden=(8,))
    description.layers[1].neuron = NeuronPopulation("temporal", params={"beta": 1e-3})
    with pytest.raises(UnsupportedNetworkError, match="temporal"):
        to_nir(description)


def _tiny_cvtc():
    import sb3_snn

    return sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), seed=0).policy


def _cartpole_obs(n):
    return np.random.default_rng(0).uniform(-0.2, 0.2, size=(n, 4))


@pytest.mark.parametrize("temporal_node", ["cuba_lif", "li_if"])
def test_beta_free_cvtc_is_written_as_time_to_first_spike_graph(tmp_path, temporal_node):
    import json

    policy = _tiny_cvtc()
    policy.set_inference("mostafa")  # the beta-free network: beta = 0 in the description
    description = policy.spiking_description()
    obs = _cartpole_obs(32)
    deployment = backends.load("nir").compile(policy, obs, temporal_node=temporal_node)
    assert deployment.calibration["agreement"] == 1.0
    deployment.save(tmp_path)
    graph = nir.read(tmp_path / "model.nir")
    n_in = description.layers[0].input_shape[0]
    names = ["input", "cvtc0", "cvtc0_neuron", "cvtc1", "cvtc1_neuron", "output"]
    if temporal_node == "li_if":
        names[2:2], names[5:5] = ["cvtc0_synapse"], ["cvtc1_synapse"]
    assert sorted(graph.nodes) == sorted(names)
    assert sorted(map(tuple, graph.edges)) == sorted(itertools.pairwise(names))
    assert list(np.asarray(graph.nodes["input"].input_type["input"])) == [n_in]
    assert isinstance(graph.nodes["cvtc0"], nir.Linear)
    np.testing.assert_allclose(graph.nodes["cvtc0"].weight, description.layers[0].weight)
    assert graph.nodes["cvtc1"].weight.shape == (2, 8)
    cell = graph.nodes["cvtc0_neuron"]
    if temporal_node == "cuba_lif":
        assert isinstance(cell, nir.CubaLIF) and cell.tau_syn.shape == (8,)
        assert np.all(cell.tau_syn == 1.0) and np.all(cell.r == cell.tau_mem) and np.all(cell.tau_mem >= 1e6)
        assert np.all(cell.v_leak == 0.0) and np.all(cell.w_in == 1.0)
        assert deployment.approximations  # the finite tau_mem is listed
    else:
        synapse = graph.nodes["cvtc0_synapse"]
        assert isinstance(synapse, nir.LI) and np.all(synapse.tau == 1.0) and np.all(synapse.r == 1.0)
        assert isinstance(cell, nir.IF) and np.all(cell.r == 1.0)
        assert deployment.approximations == []
    assert np.all(cell.v_threshold == 1.0) and np.all(cell.v_reset < -1e3)
    assert list(np.asarray(graph.nodes["output"].output_type["output"])) == [2]
    meta = json.loads(graph.metadata["sb3_snn"])
    assert meta["encoding"]["kind"] == "population_temporal"
    assert meta["readout"]["kind"] == "spike_time" and meta["readout"]["q_sign"] == description.readout["q_sign"]
    assert "first" in meta["temporal"]["semantics"] and "ln(z" in meta["temporal"]["input"]
    assert any("host" in note for note in deployment.report().notes)
    import torch as th

    policy.q_net.set_inference("mostafa")  # the beta-free network the graph describes
    loaded = backends.load("nir").load_deployment(tmp_path)
    np.testing.assert_array_equal(loaded.run(obs), policy.q_net(th.as_tensor(obs, dtype=th.float32)).argmax(1).numpy())


def test_cvtc_with_beta_is_refused_unless_dropped():
    policy = _tiny_cvtc()
    policy.set_inference("beta")
    description = policy.spiking_description()
    obs = _cartpole_obs(16)
    with pytest.raises(UnsupportedNetworkError, match=r"beta.*drop_beta=True"):
        backends.load("nir").compile(description, obs)
    deployment = backends.load("nir").compile(description, obs, drop_beta=True, temporal_node="li_if")
    assert any("beta" in a and "dropped" in a for a in deployment.approximations)
    assert 0.0 <= deployment.calibration["agreement"] <= 1.0

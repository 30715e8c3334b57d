"""The ``nir`` backend: graph contents, the reset-by-subtraction refusal, round trips, spikingjelly's importer."""

from __future__ import annotations

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
    with pytest.raises(UnsupportedNetworkError, match="layer 'fc0'.*NIR has no reset by subtraction.*approximate_reset"):
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
    with pytest.raises(backends.ArtifactError, match="model.nir: checksum mismatch"):
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


def test_temporal_neurons_are_refused():
    description = examples.sdn_like(hidden=(8,))
    description.layers[1].neuron = NeuronPopulation("temporal", params={"beta": 1e-3})
    with pytest.raises(UnsupportedNetworkError, match="temporal"):
        to_nir(description)

"""The *check* step: decide, before anything runs, whether the target can take the network."""

from __future__ import annotations

import numpy as np

from sb3_snn.backends import FitError, SpikingDescription, UnsupportedNetworkError, fan_out

TARGET = "example"


def count_resources(description: SpikingDescription) -> dict[str, dict[str, int]]:
    """Neurons and synapses per layer (flatten layers have neither).

    A synapse is one connection: ``fan_out(layer).sum()`` counts, for every input element, the
    outputs it drives (for a convolution this is not the kernel size: borders and strides count).
    """
    resources = {}
    for layer in description.layers:
        if layer.kind == "flatten":
            continue
        neurons = int(np.prod(layer.output_shape)) if layer.neuron is not None else 0
        resources[layer.name] = {"neurons": neurons, "synapses": int(fan_out(layer).sum())}
    return resources


def check_network(description: SpikingDescription, max_neurons: int) -> dict[str, dict[str, int]]:
    """Raise if the network cannot run here; return its resources (:func:`count_resources`).

    :param description: the network
    :param max_neurons: the neuron budget of the whole network
    :raises UnsupportedNetworkError: a layer has temporal (time-to-first-spike) neurons
    :raises FitError: the network has more neurons than ``max_neurons``
    """
    # 1. Features: the reference simulation runs discrete-time IF / LIF / non-spiking neurons only.
    #    Name the layer and say why, so that the user knows what to change.
    if description.is_temporal:
        layer = next(layer for layer in description.layers if layer.neuron is not None and layer.neuron.model == "temporal")
        raise UnsupportedNetworkError(
            layer.name, "temporal (time-to-first-spike) neurons",
            "this backend runs discrete-time IF/LIF neurons only", TARGET)
    # 2. Resources: compare what the network needs with what the target has.
    resources = count_resources(description)
    total = sum(r["neurons"] for r in resources.values())
    if total > max_neurons:
        raise FitError("network", "neurons", total, max_neurons, TARGET,
                       hint="use a smaller network or raise max_neurons (CLI: --set max_neurons=N)")
    return resources

"""Counting what a spiking network costs: synaptic operations (SynOps) and the dense ANN MACs.

A synaptic operation is one incoming spike delivered to one target synapse: ``spikes × fan-out``.
Layers whose input is an analog current (a converted network's first layer, say) do not receive
spikes; their work is counted as dense multiply-accumulates per step (``input_macs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch as th
from torch.nn import functional as F

from sb3_snn.spiking.description import Layer, SpikingDescription


def dense_macs(layer: Layer) -> int:
    """Multiply-accumulates of one dense (ANN) evaluation of a layer."""
    if layer.kind == "linear":
        assert layer.weight is not None  # synaptic layers carry a weight
        return int(np.prod(layer.weight.shape))
    if layer.kind == "conv2d":
        assert layer.weight is not None
        _, in_c, kh, kw = layer.weight.shape
        return int(np.prod(layer.output_shape) * in_c * kh * kw)
    return 0


def fan_out(layer: Layer) -> np.ndarray:
    """For every element of the layer's input, how many synapses it drives (shape ``input_shape``)."""
    return _fan_out(layer.kind, layer.input_shape, layer.output_shape,
                    None if layer.weight is None else tuple(layer.weight.shape), layer.stride, layer.padding)


@lru_cache(maxsize=64)
def _fan_out(kind: str, input_shape: tuple, output_shape: tuple, weight_shape: tuple | None,
             stride: tuple, padding: tuple) -> np.ndarray:
    if kind == "linear":
        assert weight_shape is not None  # synaptic layers carry a weight
        return np.full(input_shape, weight_shape[0], dtype=np.int64)
    if kind == "conv2d":
        assert weight_shape is not None
        # d(sum of outputs)/d(input) with all-ones kernels counts, for every input element, the
        # (output position, output channel) pairs it reaches: its fan-out, borders and padding included.
        x = th.ones((1, *input_shape), dtype=th.float64, requires_grad=True)
        F.conv2d(x, th.ones(weight_shape, dtype=th.float64), stride=stride, padding=padding).sum().backward()
        assert x.grad is not None
        return x.grad[0].round().to(th.int64).numpy()
    return np.zeros(input_shape, dtype=np.int64)


@dataclass
class CostReport:
    """Operations per action (one inference of ``timesteps`` steps), averaged over a batch.

    :param synops: synaptic operations driven by spikes, all layers
    :param synops_per_layer: the same per receiving layer
    :param input_macs: dense MACs of layers driven by analog input, summed over the steps
    :param ann_macs: MACs of one dense evaluation of the same network (the ANN baseline)
    :param firing_rates: per spiking layer, spikes per neuron per step
    """

    synops: float
    synops_per_layer: dict[str, float]
    input_macs: float
    ann_macs: int
    firing_rates: dict[str, float] = field(default_factory=dict)


def count_operations(description: SpikingDescription, spike_counts: dict[str, np.ndarray]) -> CostReport:
    """SynOps per action from spike counts (as :func:`sb3_snn.spiking.simulate.simulate` returns them).

    :param description: the network
    :param spike_counts: per spiking layer name, counts ``[batch, *output_shape]`` over all steps
    """
    steps = description.timesteps
    per_layer: dict[str, float] = {}
    rates: dict[str, float] = {}
    input_macs = 0.0
    ann = 0
    incoming: np.ndarray | None = None  # spike counts feeding the next layer, [batch, *shape]
    analog = not description.encoding.get("binary_input", False)
    for layer in description.layers:
        ann += dense_macs(layer)
        if layer.kind == "flatten":
            if incoming is not None:
                incoming = incoming.reshape(incoming.shape[0], -1)
            continue
        if incoming is None:
            if analog:
                input_macs += dense_macs(layer) * steps
            else:  # binary (spike) input: count the ones actually present in the observation is the
                # caller's job; here every input element is assumed to spike once per step (upper bound)
                per_layer[layer.name] = float(fan_out(layer).sum()) * steps
        else:
            per_layer[layer.name] = float((incoming * fan_out(layer)[None]).sum(axis=tuple(range(1, incoming.ndim))).mean())
        if layer.name in spike_counts:
            incoming = spike_counts[layer.name]
            rates[layer.name] = float(incoming.mean() / steps)
        else:
            incoming = None
    return CostReport(sum(per_layer.values()), per_layer, input_macs, ann, rates)

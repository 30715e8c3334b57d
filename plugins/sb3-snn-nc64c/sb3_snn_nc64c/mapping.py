"""Map: assign each layer's neurons to cores, splitting a layer into feature patches where it is too large.

A core is modelled as a crossbar of ``axons_per_core`` inputs x ``neurons_per_core`` neurons
(PAICORE-like, an assumption). A layer never shares a core with another layer. A linear layer is
split by output neurons (every core receives all inputs). A conv layer is split into *feature
patches* (a range of output channels x a tile of output rows and columns), as the published NC64C
mapping method does; a patch's axons are the input window its tile reads (all input channels). The
tile shape is chosen to use the fewest cores.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sb3_snn.backends import FitError, Layer, SpikingDescription

from sb3_snn_nc64c.spec import ChipSpec


@dataclass
class CoreAssignment:
    """What one core holds.

    :param core: core index
    :param layer: layer name
    :param patch: ``"out[a:b]"`` (linear) or ``"c[a:b] y[a:b] x[a:b]"`` (conv)
    :param neurons: neurons used
    :param axons: inputs (axons) used
    :param synapses: connections (non-padding weights) the core's neurons receive
    :param memory_bits: crossbar weights (axons x neurons x weight bits) + membrane state + neuron parameters
    """

    core: int
    layer: str
    patch: str
    neurons: int
    axons: int
    synapses: int
    memory_bits: int


@dataclass
class LayerPlan:
    """How one layer is split.

    :param layer: layer name
    :param n_cores: cores it needs
    :param tile: ``(channels, rows, cols)`` per core (conv), ``(neurons,)`` per core (linear)
    :param axons_max: largest axon count of one core (the fan-in the layer needs)
    :param neurons_max: largest neuron count of one core
    """

    layer: str
    n_cores: int
    tile: tuple[int, ...]
    axons_max: int
    neurons_max: int


@dataclass
class Mapping:
    """The whole network's placement.

    :param cores: one entry per used core
    :param plans: per layer name, its split
    :param input_coverage: per layer name, the mean number of its cores that receive one input element
        (spike packets per incoming spike)
    """

    cores: list[CoreAssignment] = field(default_factory=list)
    plans: dict[str, LayerPlan] = field(default_factory=dict)
    input_coverage: dict[str, float] = field(default_factory=dict)

    @property
    def n_cores(self) -> int:
        """Cores used."""
        return len(self.cores)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"cores": [asdict(c) for c in self.cores], "plans": {k: asdict(v) for k, v in self.plans.items()},
                "input_coverage": self.input_coverage}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mapping:
        """Inverse of :meth:`to_dict`."""
        plans = {k: LayerPlan(**{**v, "tile": tuple(v["tile"])}) for k, v in data["plans"].items()}
        return cls([CoreAssignment(**c) for c in data["cores"]], plans, dict(data["input_coverage"]))


def _window(tile: int, stride: int, kernel: int, size: int) -> int:
    """Input rows (or columns) read by ``tile`` consecutive outputs, at most the input size."""
    return min((tile - 1) * stride + kernel, size)


def min_fan_in(layer: Layer) -> tuple[int, str]:
    """The fewest axons one core of a synaptic layer needs, and why: a linear layer's whole input (every
    core it is split over receives all inputs), a conv layer's input window of one output.

    :param layer: a ``linear`` or ``conv2d`` layer
    """
    assert layer.weight is not None  # a synaptic layer has weights
    if layer.kind == "linear":
        return int(layer.weight.shape[1]), "a linear layer's inputs must all reach every core it is split over"
    _, c_in, kh, kw = (int(n) for n in layer.weight.shape)
    _, h_in, w_in = layer.input_shape
    sh, sw = layer.stride
    return (c_in * _window(1, sh, kh, h_in) * _window(1, sw, kw, w_in),
            f"one output reads {c_in} channels x a {kh}x{kw} window")


def plan_layer(layer: Layer, spec: ChipSpec) -> LayerPlan:
    """Split one synaptic layer into per-core pieces, or raise :class:`FitError` naming the limit.

    :param layer: a ``linear`` or ``conv2d`` layer
    :param spec: the chip
    :raises FitError: one core cannot receive the inputs a single neuron needs (:func:`min_fan_in`)
    """
    n_max, a_max = spec.neurons_per_core, spec.axons_per_core
    smallest, why = min_fan_in(layer)
    if smallest > a_max:
        raise FitError(layer.name, "fan-in (axons per core)", smallest, a_max, spec.name, why)
    assert layer.weight is not None  # a synaptic layer has weights
    if layer.kind == "linear":
        out = int(layer.weight.shape[0])
        per_core = min(out, n_max)
        return LayerPlan(layer.name, math.ceil(out / per_core), (per_core,), smallest, per_core)
    c_out, c_in, kh, kw = (int(n) for n in layer.weight.shape)
    _, h_in, w_in = layer.input_shape
    _, h_out, w_out = layer.output_shape
    sh, sw = layer.stride
    best: tuple[int, int, tuple[int, int, int]] | None = None
    for rows in range(1, h_out + 1):
        for cols in range(1, w_out + 1):
            axons = c_in * _window(rows, sh, kh, h_in) * _window(cols, sw, kw, w_in)
            if axons > a_max or rows * cols > n_max:
                continue
            channels = min(c_out, n_max // (rows * cols))
            cores = math.ceil(c_out / channels) * math.ceil(h_out / rows) * math.ceil(w_out / cols)
            key = (cores, axons)
            if best is None or key < best[:2]:
                best = (cores, axons, (channels, rows, cols))
    assert best is not None  # the 1x1 tile with one channel always fits once `smallest` does
    cores, axons, tile = best
    return LayerPlan(layer.name, cores, tile, axons, tile[0] * tile[1] * tile[2])


def map_network(description: SpikingDescription, spec: ChipSpec) -> Mapping:
    """Place every layer on cores (call :func:`sb3_snn_nc64c.check.check_fit` first for the full checks).

    :param description: the network
    :param spec: the chip
    :raises FitError: a layer's fan-in is too large, or the network needs more cores than the chip has
    """
    mapping = Mapping()
    for layer in description.layers:
        if layer.kind == "flatten":
            continue
        plan = plan_layer(layer, spec)
        if mapping.n_cores + plan.n_cores > spec.n_cores:
            raise FitError(layer.name, "cores", f"{mapping.n_cores + plan.n_cores} (this layer {plan.n_cores})",
                           spec.n_cores, spec.name, "use a smaller network or a spec with more/larger cores")
        mapping.plans[layer.name] = plan
        pieces = list(_pieces(layer, plan, spec))
        for patch, neurons, axons, synapses in pieces:
            memory = axons * neurons * spec.weight_bits + neurons * 2 * spec.membrane_bits  # state + threshold/bias
            mapping.cores.append(CoreAssignment(mapping.n_cores, layer.name, patch, neurons, axons, synapses, memory))
        inputs = int(math.prod(layer.input_shape))
        mapping.input_coverage[layer.name] = sum(p[2] for p in pieces) / inputs
    return mapping


def _pieces(layer: Layer, plan: LayerPlan, spec: ChipSpec) -> Iterator[tuple[str, int, int, int]]:
    """``(patch, neurons, axons, synapses)`` for every core of a layer."""
    assert layer.weight is not None  # a synaptic layer has weights
    if layer.kind == "linear":
        out, fan_in = layer.weight.shape
        for start in range(0, out, plan.tile[0]):
            stop = min(out, start + plan.tile[0])
            yield f"out[{start}:{stop}]", stop - start, int(fan_in), (stop - start) * int(fan_in)
        return
    c_out, c_in, kh, kw = layer.weight.shape
    _, h_in, w_in = layer.input_shape
    _, h_out, w_out = layer.output_shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    channels, rows, cols = plan.tile
    for c0 in range(0, c_out, channels):
        c1 = min(c_out, c0 + channels)
        for y0 in range(0, h_out, rows):
            y1 = min(h_out, y0 + rows)
            for x0 in range(0, w_out, cols):
                x1 = min(w_out, x0 + cols)
                # the input window the tile reads, clipped to the real (unpadded) input
                iy0, iy1 = max(0, y0 * sh - ph), min(h_in, (y1 - 1) * sh - ph + kh)
                ix0, ix1 = max(0, x0 * sw - pw), min(w_in, (x1 - 1) * sw - pw + kw)
                axons = int(c_in) * (iy1 - iy0) * (ix1 - ix0)
                synapses = 0
                for y in range(y0, y1):
                    ky = min(h_in, y * sh - ph + kh) - max(0, y * sh - ph)
                    for x in range(x0, x1):
                        kx = min(w_in, x * sw - pw + kw) - max(0, x * sw - pw)
                        synapses += ky * kx
                yield (f"c[{c0}:{c1}] y[{y0}:{y1}] x[{x0}:{x1}]", (c1 - c0) * (y1 - y0) * (x1 - x0), axons,
                       synapses * int(c_in) * (c1 - c0))

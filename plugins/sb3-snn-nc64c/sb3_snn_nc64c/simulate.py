"""Simulate the quantised network in integer arithmetic, with the float reference's step semantics.

Per step ``t`` and layer (all integers; ``>>`` rounds half up as the leak unit is assumed to)::

    v = (v * d_q + 2**(leak_bits-1)) >> leak_bits     (skipped when d_q == 2**leak_bits: no leak)
    v = saturate(v + (W_q . x << shift) + b_q)       (x: integer inputs, or 0/1 spikes; shift per neuron)
    s = v >= threshold_q
    v = v - threshold_q * s   |   v = reset_q where s   (reset "subtract" | "zero")

The membrane saturates; quantisation sizes the membrane step so that this changes no spike and no
readout (:func:`sb3_snn_nc64c.quantize.headroom_steps`), and the result counts saturations of the
constant-input layer, whose head-room relies on that argument, apart from the others.

Linear layers use ``int64`` matrix products. Conv layers use ``torch.conv2d`` in ``float64`` on
integer-valued tensors, which is exact while every partial sum stays below 2**53 (asserted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from torch.nn import functional as F

from sb3_snn.backends import squash_outputs


from sb3_snn_nc64c.quantize import QuantizedLayer, QuantizedNetwork, first_layer_inputs

_EXACT = 2.0**53


@dataclass
class IntegerResult:
    """What the integer simulation produced.

    :param outputs: readout values ``[batch, n_actions]`` (floats, for comparison with the reference)
    :param spike_counts: per spiking layer, spike counts ``[batch, *output_shape]``
    :param final_potential: per layer, the integer membrane after the last step
    :param saturations: per layer, membrane values that hit the membrane range where that can change a spike
        or the readout
    :param input_clipped: input values outside the calibrated range
    :param harmless_saturations: per constant-input layer (:attr:`QuantizedLayer.constant_input`), membrane
        values that hit the range: its head-room is sized so that these change no spike
    :param readout: the description's readout; a ``"squash"`` in it (Box actions) makes :attr:`actions`
        continuous
    """

    outputs: np.ndarray
    spike_counts: dict[str, np.ndarray]
    final_potential: dict[str, np.ndarray]
    saturations: dict[str, int]
    input_clipped: int
    harmless_saturations: dict[str, int] = field(default_factory=dict)
    readout: dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> np.ndarray:
        """Greedy actions ``[batch]`` (discrete), or ``[batch, n_actions]`` for a Box action space: the
        readout values squashed into ``[low, high]`` exactly as the float reference squashes them
        (:func:`sb3_snn.backends.squash_outputs`; the squash runs on the host, after the chip)."""
        if self.readout.get("squash") is not None:
            return squash_outputs(self.outputs, self.readout)
        return self.outputs.argmax(axis=1)


def scaled_inputs(network: QuantizedNetwork, obs: np.ndarray) -> tuple[np.ndarray, int]:
    """Observations in input LSBs (per-feature or per-channel scale), clipped to the input range.

    Returns ``(z, clipped)``: ``z`` is not rounded yet (the input encoder rounds it, see
    :func:`encode_input`); ``clipped`` counts values that rounded beyond the input range.

    :param network: the quantised network
    :param obs: ``[batch, *input_shape]`` float observations
    """
    obs = np.asarray(obs, dtype=np.float64)
    encoding = network.description.encoding
    first = next(layer for layer in network.layers if layer.kind != "flatten")
    scale = network.input_scale
    if encoding.get("kind") == "frames":
        # keep the stack; scale each frame's elements as the first layer sees them
        shape = obs.shape
        frame_axis = int(encoding.get("frame_axis", 0)) + 1
        moved = np.moveaxis(obs, frame_axis, 1)
        flat = moved.reshape(shape[0], shape[frame_axis], -1)
        if first.kind == "linear":
            z = flat / scale.reshape(1, 1, -1)
        else:
            z = flat.reshape(shape[0], shape[frame_axis], scale.size, -1) / scale.reshape(1, 1, -1, 1)
        z = np.moveaxis(z.reshape(moved.shape), 1, frame_axis)
    else:
        x = first_layer_inputs(network.description, obs)
        z = x / scale.reshape(1, -1, *([1] * (x.ndim - 2)))
    q = network.spec.input_max
    clipped = int((np.abs(np.round(z)) > q).sum())
    return np.clip(z, -q, q), clipped


def quantize_inputs(network: QuantizedNetwork, obs: np.ndarray) -> tuple[np.ndarray, int]:
    """Observations as integers, rounded to nearest (the ``"hold"`` input); returns ``(x_q, clipped)``.

    :param network: the quantised network
    :param obs: ``[batch, *input_shape]`` float observations
    """
    z, clipped = scaled_inputs(network, obs)
    return np.round(z).astype(np.int64), clipped


def encode_input(network: QuantizedNetwork, z: np.ndarray, step: int) -> np.ndarray:
    """The integer input the board feeds at ``step`` (0-based) from scaled observations ``z``.

    ``spec.input_encoding == "hold"``: ``round(z)`` every step. ``"sigma_delta"``: the rounding error
    is carried to the next step (first-order sigma-delta), ``round((k+1) z) - round(k z)`` at the
    ``k``-th step the value is shown, so ``k`` steps sum to ``round(k z)``: within one LSB of the
    exact total, where holding a rounded value drifts by up to ``k / 2`` LSBs.

    :param network: the quantised network
    :param z: from :func:`scaled_inputs`
    :param step: the time step
    """
    encoding = network.description.encoding
    k = step
    if encoding.get("kind") == "frames":
        frames, per_frame = int(encoding["n_frames"]), int(encoding.get("steps_per_frame", 1))
        index = min(step // per_frame, frames - 1)
        z, k = np.take(z, [index], axis=int(encoding.get("frame_axis", 0)) + 1), step - index * per_frame
    if network.spec.input_encoding == "hold":
        return np.round(z).astype(np.int64)
    return (np.floor((k + 1) * z + 0.5) - np.floor(k * z + 0.5)).astype(np.int64)


def integer_current(layer: QuantizedLayer, x: np.ndarray) -> np.ndarray:
    """``(W_q . x << shift) + b_q`` in integers (``x``: ``[batch, *input_shape]`` integers).

    :param layer: a quantised layer
    :param x: integer input
    """
    if layer.kind == "flatten":
        return x.reshape(len(x), -1)
    assert layer.weight is not None  # quantize_layer gives every synaptic layer integer weights
    if layer.kind == "linear":
        current = x.reshape(len(x), -1).astype(np.int64) @ layer.weight.astype(np.int64).T
        current = current.reshape(len(x), *layer.output_shape)
    else:
        bound = float(np.abs(x).max(initial=0)) * float(np.abs(layer.weight).sum(axis=(1, 2, 3)).max(initial=0))
        assert bound < _EXACT, f"layer {layer.name!r}: conv partial sums may exceed 2**53"
        out = F.conv2d(
            th.from_numpy(x.astype(np.float64)),
            th.from_numpy(layer.weight.astype(np.float64)),
            stride=layer.stride,
            padding=layer.padding,
        )
        current = out.numpy().round().astype(np.int64)
    if layer.shift is not None and np.any(layer.shift):
        current = current << layer.shift.astype(np.int64).reshape(-1, *([1] * (current.ndim - 2)))
    if layer.bias is not None:
        current = current + layer.bias.reshape(-1, *([1] * (current.ndim - 2)))
    return current


def simulate_integer(network: QuantizedNetwork, obs: np.ndarray) -> IntegerResult:
    """Run the quantised network on a batch of float observations (quantised on the way in).

    :param network: the quantised network
    :param obs: ``[batch, *input_shape]``
    """
    description, spec = network.description, network.spec
    z, clipped = scaled_inputs(network, obs)
    batch, steps = z.shape[0], description.timesteps
    low, high = spec.membrane_range
    one, half = 2**spec.leak_bits, (2 ** (spec.leak_bits - 1) if spec.leak_bits else 0)
    v: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    saturations = {layer.name: 0 for layer in network.layers if layer.model is not None and not layer.constant_input}
    harmless = {layer.name: 0 for layer in network.layers if layer.constant_input}
    summed: np.ndarray | None = None
    last = network.layers[-1]
    for step in range(steps):
        x = encode_input(network, z, step)
        for layer in network.layers:
            current = integer_current(layer, x)
            if layer.model is None:
                x = current
                continue
            potential = v.get(layer.name)
            if potential is None:
                potential = np.zeros_like(current)
            elif layer.decay != one:
                potential = (potential * layer.decay + half) >> spec.leak_bits
            potential = potential + current
            (harmless if layer.constant_input else saturations)[layer.name] += int(
                ((potential < low) | (potential > high)).sum()
            )
            potential = np.clip(potential, low, high)
            if layer.model == "nonspiking":
                v[layer.name] = x = potential
                continue
            assert layer.threshold is not None  # a spiking layer has an integer threshold
            threshold = layer.per_channel(layer.threshold)
            spikes = (potential >= threshold).astype(np.int64)
            if layer.reset == "subtract":
                potential = potential - threshold * spikes
            elif layer.reset == "zero":
                assert layer.reset_value is not None  # quantize_layer sets it for every neuron layer
                potential = np.where(spikes == 1, layer.per_channel(layer.reset_value), potential)
            v[layer.name] = potential
            counts[layer.name] = counts.get(layer.name, 0) + spikes
            x = spikes
        summed = x.copy() if summed is None else summed + x
    assert summed is not None  # a description has at least one time step
    outputs = _readout(network, last, summed, v.get(last.name), counts.get(last.name), steps)
    return IntegerResult(outputs.reshape(batch, -1), counts, v, saturations, clipped, harmless, description.readout)


def _readout(
    network: QuantizedNetwork,
    last: QuantizedLayer,
    summed: np.ndarray,
    final_v: np.ndarray | None,
    last_counts: np.ndarray | None,
    steps: int,
) -> np.ndarray:
    readout = network.description.readout
    kind, scale = readout["kind"], float(readout.get("scale", 1.0))
    if kind in ("rate", "membrane_mean"):
        if last.model == "nonspiking":  # summed membranes: convert integers back to float units
            assert last.unit is not None  # quantize_layer sets it for every neuron layer
            return scale * last.per_channel(last.unit) * summed.astype(np.float64) / steps
        return scale * summed.astype(np.float64) / steps  # summed spikes
    # the membrane readouts read the last layer's neurons, which quantize_layer gave a unit and (spiking) a threshold
    if kind == "robust":
        assert final_v is not None and last_counts is not None and last.threshold is not None
        return scale * (last_counts / steps + final_v.astype(np.float64) / (steps * last.per_channel(last.threshold)))
    if kind == "membrane_last":
        assert final_v is not None and last.unit is not None
        return scale * last.per_channel(last.unit) * final_v.astype(np.float64)
    raise NotImplementedError(f"unknown readout {kind!r}")

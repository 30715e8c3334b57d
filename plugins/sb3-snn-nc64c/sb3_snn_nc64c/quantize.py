"""Quantise: weights, biases, thresholds, leaks, resets and inputs to the spec's integer formats.

Per neuron (per output channel of a conv), one membrane unit ``u`` (the float value of one membrane
LSB) is chosen so that the threshold is an exact integer ``K`` and the neuron's largest incoming weight
still fits the weight width (per-channel scaling; a spike carries no unit, so neurons may differ)::

    K   = floor(w_max * threshold / max|W_row|)   (at least 1; weights beyond w_max are clipped)
    u   = threshold / K
    w_q = round(W / u),  b_q = round(b / u),  threshold_q = K,  reset_q = round(reset_value / u)

A non-spiking (readout) neuron has no threshold: ``u = max|W_row| / w_max``, and the readout converts its
integer membrane back with ``u``. The decay becomes a fixed-point
fraction ``d_q = round(decay * 2**leak_bits)`` applied as ``v <- (v * d_q + 2**(leak_bits-1)) >> leak_bits``
(exact for ``decay = 1``). Analog inputs are quantised per input feature (linear) or channel (conv):
``x_q = round(x / s)`` with ``s = max|x| / x_max`` over the calibration observations; ``s`` is folded into
the first layer's weights (``W * s``), so the chip multiplies integers only. The bias is applied every
step as a signed additive constant (PAICORE's additive leak plays this role).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_snn.backends import Layer, SpikingDescription

from sb3_snn_nc64c.spec import ChipSpec


@dataclass
class QuantizedLayer:
    """One layer in integer form.

    :param name: layer name
    :param kind: ``linear``, ``conv2d`` or ``flatten``
    :param input_shape: per-sample input shape
    :param output_shape: per-sample output shape
    :param stride: conv stride
    :param padding: conv padding
    :param weight: integer weights (``None`` for flatten)
    :param bias: integer bias per output (membrane units) or ``None``
    :param model: ``IF``, ``LIF``, ``nonspiking`` (``None`` for flatten)
    :param reset: ``subtract``, ``zero`` or ``none``
    :param threshold: integer threshold per output channel (``None`` for non-spiking)
    :param reset_value: integer membrane value after a spike per output channel (reset ``zero``)
    :param decay: fixed-point decay ``d_q`` (``2**leak_bits`` means no leak)
    :param unit: float value of one membrane LSB, per output channel
    :param clipped: weights that saturated at the weight width
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    model: str | None = None
    reset: str = "none"
    threshold: np.ndarray | None = None
    reset_value: np.ndarray | None = None
    decay: int = 1
    unit: np.ndarray | None = None
    clipped: int = 0

    ARRAYS = ("weight", "bias", "threshold", "reset_value", "unit")

    def per_channel(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per output channel) shaped to broadcast against ``[batch, *output_shape]``."""
        return np.asarray(values).reshape(-1, *([1] * (len(self.output_shape) - 1)))

    def header(self) -> dict[str, Any]:
        """Everything but the arrays (JSON-compatible)."""
        return {k: v for k, v in vars(self).items() if k not in self.ARRAYS}


@dataclass
class QuantizedNetwork:
    """The whole network in the spec's integer formats.

    :param layers: in execution order
    :param input_scale: per first-layer input feature/channel, the float value of one input LSB
    :param spec: the chip the formats come from
    :param description: the float network (encoding, time steps, readout are read from it)
    """

    layers: list[QuantizedLayer]
    input_scale: np.ndarray
    spec: ChipSpec
    description: SpikingDescription


def _smallest_int(bits: int) -> type:
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32 if bits <= 32 else np.int64


def first_layer_inputs(description: SpikingDescription, obs: np.ndarray) -> np.ndarray:
    """The values the first synaptic layer receives from calibration observations, all steps pooled.

    :param description: the network
    :param obs: ``[batch, *input_shape]``
    """
    obs = np.asarray(obs, dtype=np.float64)
    if description.encoding.get("kind") == "frames":
        axis = int(description.encoding.get("frame_axis", 0)) + 1
        obs = np.concatenate([np.take(obs, [i], axis=axis) for i in range(obs.shape[axis])], axis=0)
    x = obs
    for layer in description.layers:
        if layer.kind != "flatten":
            return x
        x = x.reshape(len(x), -1)
    return x


def calibrate_input(description: SpikingDescription, obs: np.ndarray, spec: ChipSpec, margin: float = 1.0) -> np.ndarray:
    """Per-feature (linear) or per-channel (conv) input scale: ``max|x| * margin / x_max``.

    :param description: the network
    :param obs: calibration observations ``[batch, *input_shape]``
    :param spec: the chip (``input_bits``)
    :param margin: head-room factor on the observed range
    """
    x = first_layer_inputs(description, obs)
    reduce = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))
    peak = np.abs(x).max(axis=reduce) * margin
    peak = np.where(peak > 0, peak, 1.0)
    return peak / spec.input_max


def _fold_input_scale(layer: Layer, scale: np.ndarray) -> np.ndarray:
    if layer.kind == "linear":
        return layer.weight * scale[None, :]
    return layer.weight * scale[None, :, None, None]


def quantize_layer(layer: Layer, spec: ChipSpec, weight: np.ndarray | None = None, input_peak: float = 1.0,
                   timesteps: int = 1) -> QuantizedLayer:
    """Quantise one layer (``weight`` overrides ``layer.weight``, e.g. with the input scale folded in).

    :param layer: the float layer
    :param spec: the chip
    :param weight: the float weights to quantise (default ``layer.weight``)
    :param input_peak: largest integer input (1 for spikes, ``x_max`` for analog input)
    :param timesteps: steps per action; ``K`` is capped so that ``timesteps + 1`` worst-case currents
        cannot leave the membrane range (no saturation by construction)
    """
    common = dict(name=layer.name, kind=layer.kind, input_shape=layer.input_shape, output_shape=layer.output_shape,
                  stride=tuple(layer.stride), padding=tuple(layer.padding))
    if layer.kind == "flatten":
        return QuantizedLayer(**common)
    neuron = layer.neuron
    w = np.asarray(layer.weight if weight is None else weight, dtype=np.float64)
    peak = np.abs(w.reshape(len(w), -1)).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    w_max = spec.weight_max
    if neuron.model == "nonspiking":
        unit, threshold = peak / w_max, None
    else:
        k = np.floor(w_max * neuron.threshold / peak * (1 + 1e-12))
        # worst case |current| in threshold units: every input at its peak, plus the bias
        bias = np.zeros(len(w)) if layer.bias is None else np.abs(np.asarray(layer.bias, dtype=np.float64))
        worst = (np.abs(w.reshape(len(w), -1)).sum(axis=1) * input_peak + bias) / neuron.threshold
        cap = np.floor(spec.membrane_range[1] / ((timesteps + 1) * np.maximum(worst, 1e-30)))
        k = np.clip(np.minimum(k, cap), 1, None).astype(np.int64)
        unit, threshold = neuron.threshold / k, k
    raw = np.round(w / unit.reshape(-1, *([1] * (w.ndim - 1))))
    clipped = int((np.abs(raw) > w_max).sum())
    w_q = np.clip(raw, -w_max, w_max).astype(_smallest_int(spec.weight_bits))
    low, high = spec.membrane_range
    b_q = None if layer.bias is None else np.clip(np.round(np.asarray(layer.bias) / unit), low, high).astype(np.int64)
    return QuantizedLayer(
        **common, weight=w_q, bias=b_q, model=neuron.model, reset=neuron.reset, threshold=threshold,
        reset_value=np.round(neuron.reset_value / unit).astype(np.int64),
        decay=int(round(neuron.decay * 2 ** spec.leak_bits)), unit=unit, clipped=clipped,
    )


def quantize_network(description: SpikingDescription, spec: ChipSpec, calibration_obs: np.ndarray | None = None,
                     margin: float = 1.0, input_scale: np.ndarray | None = None) -> QuantizedNetwork:
    """Quantise every layer; the first synaptic layer gets the input scale folded into its weights.

    :param description: the float network
    :param spec: the chip
    :param calibration_obs: observations ``[batch, *input_shape]`` that set the input range
    :param margin: head-room factor on the observed input range
    :param input_scale: a given input scale instead of a calibrated one
    """
    if input_scale is None:
        if calibration_obs is None:
            raise ValueError("quantize_network needs calibration_obs or input_scale")
        input_scale = calibrate_input(description, calibration_obs, spec, margin)
    layers, first = [], True
    for layer in description.layers:
        weight = None
        if first and layer.kind != "flatten":
            weight, first = _fold_input_scale(layer, input_scale), False
            layers.append(quantize_layer(layer, spec, weight, spec.input_max, description.timesteps))
            continue
        layers.append(quantize_layer(layer, spec, weight, 1.0, description.timesteps))
    return QuantizedNetwork(layers, np.asarray(input_scale, dtype=np.float64), spec, description)

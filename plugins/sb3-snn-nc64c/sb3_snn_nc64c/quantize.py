"""Quantise: weights, biases, thresholds, leaks, resets and inputs to the spec's integer formats.

Per neuron (per output channel of a conv) the toolchain picks two units: the weight step ``u_w`` and
the membrane step ``u = u_w / 2**shift`` (weights enter the membrane shifted left by ``shift``, at most
``spec.weight_shift_bits``; a spike carries no unit, so neurons may differ)::

    K         = floor(w_max * 2**S * threshold / max|W_row|)   (capped so saturation cannot matter, see headroom_steps)
    u         = threshold / K                    (the threshold is exactly K membrane steps)
    shift     = smallest s <= S with u * 2**s >= max|W_row| / w_max      u_w = u * 2**shift
    w_q       = round(W / u_w) in [-w_max, w_max],  b_q = round(b / u),  threshold_q = K

so each neuron's largest weight uses the full integer range while its threshold stays exact and its
bias resolves ``2**shift`` times finer than a weight. A non-spiking (readout) neuron has no threshold:
``u_w = max|W_row| / w_max``, and the readout converts its integer membrane back with ``u``.

Rounding (``rounding="error_feedback"``, the default) does not round each weight independently: the
layer's weights are rounded one input column after the other, and each rounding error is pushed onto
the not-yet-rounded weights and finally the bias so that the error of the *membrane* stays small on
the calibration data (second-order error feedback, as in optimal-brain-quantisation / GPTQ). The data
term is ``H = sum_t f_t f_t^T`` over calibration samples, where ``f_t`` is the layer's input filtered
by the neuron's decay (``f_t = decay * f_{t-1} + x_t``, a constant 1 appended for the bias): exactly
the input-driven part of the membrane at step ``t``. A network's hidden activity lives on a
low-dimensional set (a CartPole policy's on a 4-D one), so most of the rounding error can be moved
where the data never looks. ``rounding="nearest"`` rounds independently (the ablation).

The decay becomes a fixed-point fraction ``d_q = round(decay * 2**leak_bits)`` applied as
``v <- (v * d_q + 2**(leak_bits-1)) >> leak_bits`` (exact for ``decay = 1``). Analog inputs are
quantised per input feature (linear) or channel (conv): ``x_q = round(x / s)`` with
``s = max|x| * margin / x_max`` over the calibration observations; ``s`` is folded into the first
layer's weights (``W * s``), so the chip multiplies integers only. The bias is applied every step as a
signed additive constant (PAICORE's additive leak plays this role).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch as th
from torch.nn import functional as F

from sb3_snn.backends import Layer, NeuronPopulation, SpikingDescription, encode_step, layer_current, neuron_step

from sb3_snn_nc64c.spec import ChipSpec

ROUNDINGS = ("error_feedback", "nearest")


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
    :param bias: integer bias per output (membrane steps) or ``None``
    :param model: ``IF``, ``LIF``, ``nonspiking`` (``None`` for flatten)
    :param reset: ``subtract``, ``zero`` or ``none``
    :param threshold: integer threshold per output channel (``None`` for non-spiking)
    :param reset_value: integer membrane value after a spike per output channel (reset ``zero``)
    :param decay: fixed-point decay ``d_q`` (``2**leak_bits`` means no leak)
    :param unit: float value of one membrane step, per output channel
    :param shift: per output channel, the left shift of ``W_q . x`` into the membrane (``None``: 0)
    :param clipped: weights that saturated at the weight width
    :param constant_input: the layer sees the same analog input every step and is not read out: its
        membrane may saturate without changing a spike (:func:`headroom_steps`)
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
    shift: np.ndarray | None = None
    clipped: int = 0
    constant_input: bool = False

    #: the array fields (saved to ``arrays.npz``; the rest is the JSON header)
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "bias", "threshold", "reset_value", "unit", "shift")

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


def calibrate_input_from_bound(description: SpikingDescription, bound: Any, spec: ChipSpec) -> np.ndarray:
    """Per-feature (linear) or per-channel (conv) input scale from a known bound on ``|x|``: ``bound / x_max``.

    :param description: the network
    :param bound: a scalar, or one positive value per first-layer input feature / channel
    :param spec: the chip (``input_bits``)
    :raises ValueError: a bound of the wrong size, or not positive
    """
    first = next(layer for layer in description.layers if layer.kind != "flatten")
    assert first.weight is not None  # every synaptic (non-flatten) layer has weights
    n = first.weight.shape[1]  # input features (linear) or channels (conv)
    bound = np.asarray(bound, dtype=np.float64)
    if bound.size not in (1, n) or not np.all(bound > 0):
        raise ValueError(f"input bound must be one positive value or {n} (one per input of layer {first.name!r}), "
                         f"got {bound.tolist()}")
    return np.broadcast_to(bound.reshape(-1), (n,)).copy() / spec.input_max


def _fold_input_scale(layer: Layer, scale: np.ndarray) -> np.ndarray:
    assert layer.weight is not None  # only called for the first synaptic layer
    if layer.kind == "linear":
        return layer.weight * scale[None, :]
    return layer.weight * scale[None, :, None, None]


def _input_rows(layer: Layer, filtered: th.Tensor, bias_term: float) -> th.Tensor:
    """Samples ``[n, fan_in + 1]`` of a layer's filtered input (im2col patches for a conv), bias term last."""
    if layer.kind == "linear":
        rows = filtered.reshape(len(filtered), -1)
    else:
        assert layer.weight is not None  # a conv layer has weights
        kh, kw = layer.weight.shape[2:]
        patches = F.unfold(filtered, (kh, kw), padding=layer.padding, stride=layer.stride)  # [b, fan_in, L]
        rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    return th.cat([rows, th.full((len(rows), 1), bias_term, dtype=rows.dtype)], dim=1)


def calibration_statistics(description: SpikingDescription, obs: np.ndarray, input_scale: np.ndarray,
                           max_rows: int = 8192, seed: int = 0) -> dict[str, np.ndarray]:
    """Per synaptic layer, ``H = sum f f^T`` of its decay-filtered input (bias term last) on calibration data.

    Runs the float network with the reference semantics (see :mod:`sb3_snn.spiking.description`); the
    first synaptic layer's input is taken in input LSBs (``x / input_scale``), matching its folded weights.

    :param description: the float network
    :param obs: calibration observations ``[batch, *input_shape]``
    :param input_scale: the input scale folded into the first synaptic layer
    :param max_rows: conv layers: at most this many patch rows per step enter ``H`` (a seeded sample)
    :param seed: seeds that sample
    """
    rng = np.random.default_rng(seed)
    x_obs = th.as_tensor(np.asarray(obs), dtype=th.float64)
    synaptic = [layer for layer in description.layers if layer.kind != "flatten"]
    first = synaptic[0].name
    scale = th.as_tensor(np.asarray(input_scale, dtype=np.float64))
    hessians: dict[str, th.Tensor] = {}
    filtered: dict[str, th.Tensor] = {}
    bias_terms: dict[str, float] = {}
    potentials: dict[str, th.Tensor] = {}
    with th.no_grad():
        for step in range(description.timesteps):
            x = encode_step(description, x_obs, step)
            for layer in description.layers:
                if layer.kind == "flatten":
                    x = x.flatten(1)
                    continue
                neuron = layer.neuron
                assert neuron is not None  # check_fit refuses a synaptic layer without neurons
                inp = x / scale.reshape(1, -1, *([1] * (x.dim() - 2))) if layer.name == first else x
                f = filtered.get(layer.name)
                filtered[layer.name] = f = inp if f is None else neuron.decay * f + inp
                bias_terms[layer.name] = c = neuron.decay * bias_terms.get(layer.name, 0.0) + 1.0
                rows = _input_rows(layer, f, c)
                if len(rows) > max_rows:
                    rows = rows[th.as_tensor(rng.choice(len(rows), max_rows, replace=False))]
                hessians[layer.name] = hessians.get(layer.name, 0.0) + rows.T @ rows
                v, spikes = neuron_step(neuron, potentials.get(layer.name), layer_current(layer, x))
                potentials[layer.name], x = v, (v if spikes is None else spikes)
    return {name: h.numpy() for name, h in hessians.items()}


def round_with_error_feedback(weight: np.ndarray, step: np.ndarray, w_max: int, bias: np.ndarray,
                              bias_step: np.ndarray, hessian: np.ndarray, damping: float = 1e-3
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Round ``[weight | bias]`` row-wise to integer grids, feeding each rounding error forward.

    Columns are rounded in order of decreasing ``H`` diagonal, the bias last; after rounding column
    ``i`` the remaining columns move by the error times row ``i`` of the upper Cholesky factor of
    ``H^-1`` (divided by its diagonal), which minimises ``(W - W_q) H (W - W_q)^T`` given the columns
    already rounded. The bias (on the finer membrane grid) absorbs what is left.

    :param weight: ``[out, fan_in]`` float weights
    :param step: ``[out]`` weight step per row
    :param w_max: largest integer weight magnitude
    :param bias: ``[out]`` float bias (zeros when the layer has none)
    :param bias_step: ``[out]`` bias (membrane) step per row
    :param hessian: ``[fan_in + 1, fan_in + 1]`` from :func:`calibration_statistics`
    :param damping: added to the diagonal, relative to its mean (keeps ``H`` invertible)
    :returns: integer weights ``[out, fan_in]`` (not yet clipped to a dtype) and the bias in membrane steps
    """
    fan_in = weight.shape[1]
    h = np.array(hessian, dtype=np.float64)
    dead = np.diag(h) <= 0
    h[dead, :], h[:, dead] = 0.0, 0.0
    h[dead, dead] = 1.0
    h[np.diag_indices_from(h)] += damping * float(np.mean(np.diag(h)))
    order = np.concatenate([np.argsort(-np.diag(h)[:fan_in], kind="stable"), [fan_in]])
    h = h[np.ix_(order, order)]
    work = np.concatenate([weight, bias[:, None]], axis=1)[:, order].astype(np.float64)
    upper = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros((len(work), fan_in))
    for i in range(fan_in):
        q[:, i] = np.clip(np.round(work[:, i] / step), -w_max, w_max)
        error = (work[:, i] - q[:, i] * step) / upper[i, i]
        work[:, i + 1:] -= error[:, None] * upper[i, i + 1:][None, :]
    w_q = np.empty_like(q)
    w_q[:, order[:fan_in]] = q
    return w_q, np.round(work[:, fan_in] / bias_step)


def headroom_steps(neuron: NeuronPopulation, timesteps: int, constant_input: bool = False) -> float:
    """How many worst-case step currents the membrane range must hold so that saturation changes nothing.

    - ``constant_input`` (a spiking, non-readout layer whose input is the same analog observation every
      step, IF or LIF): **2**. The step current is ``c + e_t`` with ``c`` constant and the input
      encoder's error partial sums bounded by one LSB per input. Below zero the membrane only goes far
      when ``c < 0``, and then the neuron never fires again whether the membrane saturates or not
      (the saturated membrane is higher, but stays within ``sum|W_q|`` of the floor); above the
      threshold it only goes far when ``c >= threshold``, and then the neuron fires every step either
      way. A range of ``threshold + 2`` worst currents keeps both cases away from the other side.
    - a leaky neuron (``decay < 1``): ``|v| <= worst / (1 - decay)`` (geometric sum), so
      ``min(T + 1, 1 / (1 - decay) + 1)``;
    - otherwise (spike input, IF, or the readout layer whose final membrane is read): ``T + 1``.

    :param neuron: the layer's population
    :param timesteps: steps per action
    :param constant_input: the layer sees the same analog input every step and is not read out
    """
    if constant_input and neuron.model in ("IF", "LIF"):
        return 2.0
    if neuron.decay < 1.0:
        return float(min(timesteps + 1, 1.0 / (1.0 - neuron.decay) + 1.0))
    return float(timesteps + 1)


def quantize_layer(layer: Layer, spec: ChipSpec, weight: np.ndarray | None = None, input_peak: float = 1.0,
                   timesteps: int = 1, hessian: np.ndarray | None = None,
                   constant_input: bool = False) -> QuantizedLayer:
    """Quantise one layer (``weight`` overrides ``layer.weight``, e.g. with the input scale folded in).

    The membrane step ``u`` is as fine as the weight width and shift allow, but no finer than keeps
    ``threshold + headroom`` worst-case currents (every input at its peak, weights at twice the float
    weights' magnitude for the error feedback's room) inside the membrane range, with the headroom of
    :func:`headroom_steps`. That bound decides the first layer's precision: with ``T + 1`` steps at
    T = 200, 12-bit inputs and a 30-bit membrane a CartPole layer kept only ~8 bits of its 16-bit weights.

    :param layer: the float layer
    :param spec: the chip
    :param weight: the float weights to quantise (default ``layer.weight``)
    :param input_peak: largest integer input (1 for spikes, ``x_max`` for analog input)
    :param timesteps: steps per action (the headroom of a layer that accumulates)
    :param hessian: calibration statistics (:func:`calibration_statistics`); ``None`` rounds to nearest
    :param constant_input: the layer's input is the same analog observation every step and its membrane
        is not read out (see :func:`headroom_steps`)
    """
    common: dict[str, Any] = dict(name=layer.name, kind=layer.kind, input_shape=layer.input_shape,
                                  output_shape=layer.output_shape, stride=tuple(layer.stride),
                                  padding=tuple(layer.padding))
    if layer.kind == "flatten":
        return QuantizedLayer(**common)
    neuron = layer.neuron
    assert neuron is not None  # check_fit refuses a synaptic layer without neurons
    w = np.asarray(layer.weight if weight is None else weight, dtype=np.float64)
    rows = w.reshape(len(w), -1)
    peak = np.abs(rows).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    w_max, top = spec.weight_max, spec.membrane_range[1]
    bias = np.zeros(len(w)) if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
    # worst-case |current| per step: every input at its peak, weights up to twice their float size
    worst = 2.0 * np.abs(rows).sum(axis=1) * input_peak + np.abs(bias)
    fine = peak / (w_max * 2.0**spec.weight_shift_bits)  # the finest membrane step the shift allows
    threshold_float = 0.0 if neuron.model == "nonspiking" else float(neuron.threshold)
    # the finest membrane step with which saturation cannot change a spike or the readout
    floor = (threshold_float + worst * headroom_steps(neuron, timesteps, constant_input)) / top
    unit: np.ndarray
    threshold: np.ndarray | None
    if neuron.model == "nonspiking":
        unit, threshold = np.maximum(fine, floor), None
    else:
        k = np.floor(neuron.threshold / np.maximum(fine, floor) * (1 + 1e-12))
        k = np.clip(k, 1, top).astype(np.int64)
        unit, threshold = neuron.threshold / k, k
    shift = np.clip(np.ceil(np.log2(peak / (w_max * unit)) - 1e-9), 0, spec.weight_shift_bits).astype(np.int64)
    step = unit * 2.0**shift
    if hessian is None:
        raw, b_q = np.round(rows / step[:, None]), np.round(bias / unit)
    else:
        raw, b_q = round_with_error_feedback(rows, step, w_max, bias, unit, hessian)
    clipped = int((np.abs(raw) > w_max).sum())
    w_q = np.clip(raw, -w_max, w_max).reshape(w.shape).astype(_smallest_int(spec.weight_bits))
    low, high = spec.membrane_range
    b_q = None if layer.bias is None and hessian is None else np.clip(b_q, low, high).astype(np.int64)
    return QuantizedLayer(
        **common, weight=w_q, bias=b_q, model=neuron.model, reset=neuron.reset, threshold=threshold,
        reset_value=np.round(neuron.reset_value / unit).astype(np.int64),
        decay=round(neuron.decay * 2 ** spec.leak_bits), unit=unit, shift=shift, clipped=clipped,
        constant_input=bool(constant_input and neuron.model in ("IF", "LIF")),
    )


def quantize_network(description: SpikingDescription, spec: ChipSpec, calibration_obs: np.ndarray | None = None,
                     margin: float = 1.0, input_scale: np.ndarray | None = None,
                     rounding: str = "error_feedback") -> QuantizedNetwork:
    """Quantise every layer; the first synaptic layer gets the input scale folded into its weights.

    :param description: the float network
    :param spec: the chip
    :param calibration_obs: observations ``[batch, *input_shape]`` that set the input range and the
        statistics of the error feedback
    :param margin: head-room factor on the observed input range
    :param input_scale: a given input scale instead of a calibrated one
    :param rounding: ``"error_feedback"`` (needs ``calibration_obs``) or ``"nearest"``
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; expected one of {ROUNDINGS}")
    if input_scale is None:
        if calibration_obs is None:
            raise ValueError("quantize_network needs calibration_obs or input_scale")
        input_scale = calibrate_input(description, calibration_obs, spec, margin)
    input_scale = np.asarray(input_scale, dtype=np.float64)
    hessians: dict[str, np.ndarray] = {}
    if rounding == "error_feedback":
        if calibration_obs is None:
            raise ValueError("rounding='error_feedback' needs calibration_obs")
        hessians = calibration_statistics(description, calibration_obs, input_scale)
    layers, first = [], True
    last = max(i for i, layer in enumerate(description.layers) if layer.kind != "flatten")
    for index, layer in enumerate(description.layers):
        weight, peak, constant = None, 1.0, False
        if first and layer.kind != "flatten":
            weight, peak, first = _fold_input_scale(layer, input_scale), spec.input_max, False
            constant = description.encoding.get("kind") == "analog" and index != last
        layers.append(quantize_layer(layer, spec, weight, peak, description.timesteps, hessians.get(layer.name),
                                     constant_input=constant))
    return QuantizedNetwork(layers, input_scale, spec, description)

"""A lean CPU inference path for the SDN student: one compiled (numba) call per action.

:meth:`SpikingStudent.forward_fast <sb3_snn.sdn.network.SpikingStudent.forward_fast>` runs the
training schedule with the training's own torch operations (bit-identical to training), and at batch 1
it is bound by per-call overhead: a torch convolution on a 20x20x8 map costs tens of microseconds
whatever its few thousand multiply-adds, and every time step of every layer is a numpy call. This
module compiles the whole student (inference mode) into flat arrays and runs observation -> action in
a single numba kernel:

* the weights are copied once (float32, batch normalisation folded in, fully connected weights
  transposed), and the copy is rebuilt whenever a parameter or buffer changes (version counters);
* time is the outer loop, the layers the inner one; membranes, currents and spikes live in a small
  work area, the first layer's current is computed once per distinct input (frame) and reused;
* a convolution of stride ``s`` reads its input "phase split": ``s x s`` planes, plane ``(ry, rx)``
  holding the pixels ``(y, x)`` with ``y % s == ry`` and ``x % s == rx``. Every kernel tap then reads one
  contiguous run of its plane for all output positions at once (computing ``ceil(W / s) - OW`` unused
  columns per output row), so the convolution is a sequence of vectorised ``current += w * run``
  updates (two output channels and four taps per pass) with no im2col gather. The observation (its
  uint8 pixels divided by 255 in float32, as SB3's preprocessing does in torch) and the spikes of a
  convolution feeding another one are copied into that layout (strides 2 and 4 by vectorised loops);
* the LIF update runs over a layer's currents as they lie, unused columns included (their spikes are
  never read), in a few contiguous, branch-free, vectorised loops;
* a fully connected layer reads the previous layer's spikes where they lie (its weight rows moved to
  match, zero rows for the unused columns) and adds the weight row of every non-zero input;
* spike counts are accumulated in the same layout and put in the order of ``forward`` only when read.

The LIF recurrence is evaluated with the same float32 operations as :func:`~sb3_snn.sdn.network.lif_numpy`
(``v = v * decay + I``, ``v >= threshold``, reset to 0). The synaptic sums are the same terms added in
another order (and with fused multiply-adds), so a current may differ from torch's by a few float32
rounding steps, and a spike could differ where a membrane lies within that rounding of the threshold.
Logits equal the training forward's to float32 rounding and the actions are the same except at such
near-ties: tested on random students, and over 1,500 observations of Pong episodes for each of five
trained Pong students (with and without tdBN) and 3,000 CartPole observations of a trained CartPole
student no spike and no action differed (largest logit difference 1.4e-6; ``docs/sdn.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from numba import njit
from torch import nn

from sb3_snn.sdn.folding import fold_norm

_CONV, _LINEAR = 0, 1
_UINT8, _FLOAT32 = np.dtype(np.uint8), np.dtype(np.float32)

# header of the integer table (``ints``): fixed slots, then the per-layer rows (``spec``) and tables
_H_DISTINCT, _H_REPEATS, _H_STEPS, _H_LAYERS, _H_RATE, _H_RO_IN, _H_ACTIONS = 0, 1, 2, 3, 4, 5, 6
_H_IN0_OFF, _H_RO_OFF, _H_POOL_OFF, _H_OCUR_OFF, _H_OV_OFF, _H_OCNT_OFF = 7, 8, 9, 10, 11, 12
_H_SPEC, _H_STEPW, _H_OUTW, _H_OUTWT, _H_OUTB, _H_TOTAL = 13, 14, 15, 16, 17, 18
_H_IN_CONV, _H_IN_C, _H_IN_H, _H_IN_W, _H_IN_S, _H_IN_PLANE, _H_IN_COLS = 19, 20, 21, 22, 23, 24, 25
_HEADER = 26
# columns of a layer's row in ``spec``: its buffers, weights, shape, and where its spikes go
_S_KIND, _S_IN_OFF, _S_CUR_OFF, _S_V_OFF, _S_SPK_OFF, _S_WIDE, _S_W_OFF, _S_B_OFF, _S_CNT_OFF = 0, 1, 2, 3, 4, 5, 6, 7, 8
_S_FAN_IN, _S_OUT_CH, _S_RUN, _S_TAPS, _S_ROW = 9, 10, 11, 12, 13
_S_NEXT_CONV, _S_NEXT_OFF, _S_OUT_H, _S_OUT_W, _S_NEXT_S, _S_NEXT_PLANE, _S_NEXT_COLS = 14, 15, 16, 17, 18, 19, 20
_SPEC_WIDTH = 21
# slots of the float table (``floats``) before the weights
_F_DECAY, _F_THRESHOLD, _F_RATE_SCALE, _F_READOUT_DECAY = 0, 1, 2, 3
_F_HEADER = 4


@njit(cache=True, fastmath={"contract"})
def _conv_current(work, in_off, cur_off, out_channels, run, n_taps, ints, taps_off, floats, w_off, b_off):  # pragma: no cover
    """Currents of a convolution on phase-split input: per output channel one run of ``run`` values
    (output rows of the input plane's width), the bias plus every tap's weight times its input run.
    Two output channels and four taps per pass over the runs: each input value loaded serves eight
    multiply-adds, each current is loaded and stored once per four taps."""
    for oc in range(0, out_channels - 1, 2):
        c0, c1 = work[cur_off + oc * run: cur_off + (oc + 1) * run], work[cur_off + (oc + 1) * run: cur_off + (oc + 2) * run]
        b0, b1 = floats[b_off + oc], floats[b_off + oc + 1]
        for j in range(run):
            c0[j] = b0
            c1[j] = b1
        r0, r1 = w_off + oc * n_taps, w_off + (oc + 1) * n_taps
        tap = 0
        while tap + 4 <= n_taps:
            o0, o1 = in_off + ints[taps_off + tap], in_off + ints[taps_off + tap + 1]
            o2, o3 = in_off + ints[taps_off + tap + 2], in_off + ints[taps_off + tap + 3]
            s0, s1, s2, s3 = work[o0: o0 + run], work[o1: o1 + run], work[o2: o2 + run], work[o3: o3 + run]
            a0, a1, a2, a3 = floats[r0 + tap], floats[r0 + tap + 1], floats[r0 + tap + 2], floats[r0 + tap + 3]
            e0, e1, e2, e3 = floats[r1 + tap], floats[r1 + tap + 1], floats[r1 + tap + 2], floats[r1 + tap + 3]
            for j in range(run):
                x0, x1, x2, x3 = s0[j], s1[j], s2[j], s3[j]
                c0[j] = c0[j] + a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                c1[j] = c1[j] + e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
            tap += 4
        for rest in range(tap, n_taps):  # the taps left over after the groups of four
            o0 = in_off + ints[taps_off + rest]
            s0 = work[o0: o0 + run]
            a0, e0 = floats[r0 + rest], floats[r1 + rest]
            for j in range(run):
                c0[j] += a0 * s0[j]
                c1[j] += e0 * s0[j]
    if out_channels % 2:  # the last channel alone
        oc = out_channels - 1
        c0 = work[cur_off + oc * run: cur_off + (oc + 1) * run]
        b0 = floats[b_off + oc]
        for j in range(run):
            c0[j] = b0
        for tap in range(n_taps):
            o0 = in_off + ints[taps_off + tap]
            s0 = work[o0: o0 + run]
            a0 = floats[w_off + oc * n_taps + tap]
            for j in range(run):
                c0[j] += a0 * s0[j]


@njit(cache=True, fastmath={"contract"})
def _linear_current(work, in_off, n_in, cur_off, n_out, floats, w_off, b_off):  # pragma: no cover
    """Currents of a fully connected layer: the bias plus the (transposed) weight row of every non-zero input."""
    current = work[cur_off: cur_off + n_out]
    for o in range(n_out):
        current[o] = floats[b_off + o]
    for i in range(n_in):
        x = work[in_off + i]
        if x != 0.0:
            row = floats[w_off + i * n_out: w_off + (i + 1) * n_out]
            for o in range(n_out):
                current[o] += x * row[o]


@njit(cache=True)
def _lif_step(work, cur_off, v_off, spk_off, wide, first, decay, threshold, counts, cnt_off):  # pragma: no cover
    """One step of a hard-reset LIF population over its currents as they lie (for a convolution with the
    unused columns, whose values are never read): the same float32 operations as ``lif_numpy``,
    ``v = v * decay + I`` (``v = I`` at the first step), ``v >= threshold``, ``v = 0`` where it spiked.
    Spikes (0 / 1) go to ``work[spk_off:]`` and are added to ``counts[cnt_off:]``."""
    one, zero = np.float32(1.0), np.float32(0.0)
    current = work[cur_off: cur_off + wide]
    v = work[v_off: v_off + wide]
    spikes = work[spk_off: spk_off + wide]
    total = counts[cnt_off: cnt_off + wide]
    if first:
        for j in range(wide):
            v[j] = current[j]
    elif decay != one:
        for j in range(wide):
            v[j] = v[j] * decay + current[j]
    else:
        for j in range(wide):
            v[j] = v[j] + current[j]
    for j in range(wide):  # selects, no branches: spikes are hard to predict
        fired = v[j] >= threshold
        spike = one if fired else zero
        spikes[j] = spike
        total[j] += spike
        v[j] = zero if fired else v[j]


@njit(cache=True)
def _split(source, base, divide, work, dst_off, channels, height, width, channel_stride, row_stride, stride, plane,
           cols):  # pragma: no cover
    """Copy a ``[channels, height, width]`` map (``source[base + c * channel_stride + y * row_stride + x]``)
    into a convolution's phase-split input buffer at ``work[dst_off:]`` as float32, divided by 255 if
    ``divide`` (SB3's image preprocessing: a float32 division, as torch's). Strides 2 and 4 have their
    own loops (one source row into ``stride`` contiguous destination runs, which the compiler
    vectorises), other strides a generic one."""
    scale = np.float32(255.0) if divide else np.float32(1.0)  # x / 1 == x
    if stride == 2 or stride == 4:
        groups = width // stride
        for c in range(channels):
            for y in range(height):
                start = base + c * channel_stride + y * row_stride
                src = source[start: start + width]
                first = dst_off + (c * stride + y % stride) * stride * plane + (y // stride) * cols
                d0, d1 = work[first: first + groups], work[first + plane: first + plane + groups]
                if stride == 2:
                    for x in range(groups):
                        d0[x] = np.float32(src[2 * x]) / scale
                        d1[x] = np.float32(src[2 * x + 1]) / scale
                else:
                    d2 = work[first + 2 * plane: first + 2 * plane + groups]
                    d3 = work[first + 3 * plane: first + 3 * plane + groups]
                    for x in range(groups):
                        d0[x] = np.float32(src[4 * x]) / scale
                        d1[x] = np.float32(src[4 * x + 1]) / scale
                        d2[x] = np.float32(src[4 * x + 2]) / scale
                        d3[x] = np.float32(src[4 * x + 3]) / scale
                for x in range(groups * stride, width):
                    work[first + (x % stride) * plane + x // stride] = np.float32(src[x]) / scale
        return
    for c in range(channels):
        for ry in range(stride):
            for rx in range(stride):
                destination = dst_off + ((c * stride + ry) * stride + rx) * plane
                for y in range((height - ry + stride - 1) // stride):
                    start = base + c * channel_stride + (y * stride + ry) * row_stride + rx
                    row = destination + y * cols
                    for x in range((width - rx + stride - 1) // stride):
                        work[row + x] = np.float32(source[start + x * stride]) / scale


@njit(cache=True)
def _lean_kernel(obs, divide, ints, floats, work, logits, actions, counts):  # noqa: C901  # pragma: no cover
    # C901: kept as one function, numba compiles the whole batch loop nest to one native function
    """Logits, greedy actions and spike counts of a batch of flattened observations ``[batch, n]``.

    ``ints`` / ``floats`` are the tables of :class:`LeanStudent` (layout in its ``_build``); ``work``
    is its work area (padding zero); ``divide``: divide the observation by 255 (in float32, as SB3's
    preprocessing of images does in torch)."""
    n_distinct, repeats, n_steps = ints[_H_DISTINCT], ints[_H_REPEATS], ints[_H_STEPS]
    n_layers, rate, ro_in, n_actions = ints[_H_LAYERS], ints[_H_RATE], ints[_H_RO_IN], ints[_H_ACTIONS]
    in0_off, ro_off, pool_off = ints[_H_IN0_OFF], ints[_H_RO_OFF], ints[_H_POOL_OFF]
    ocur_off, ov_off, ocnt_off = ints[_H_OCUR_OFF], ints[_H_OV_OFF], ints[_H_OCNT_OFF]
    spec = ints[_H_SPEC]
    decay, threshold = floats[_F_DECAY], floats[_F_THRESHOLD]
    rate_scale = floats[_F_RATE_SCALE]
    total = floats[ints[_H_TOTAL]]
    step_w, out_w, out_wt, out_b = ints[_H_STEPW], ints[_H_OUTW], ints[_H_OUTWT], ints[_H_OUTB]
    size = obs.shape[1] // n_distinct
    in_h, in_w = ints[_H_IN_H], ints[_H_IN_W]
    for b in range(obs.shape[0]):
        row_counts = counts[b]
        for k in range(row_counts.shape[0]):
            row_counts[k] = 0.0
        for i in range(ro_in):
            work[pool_off + i] = 0.0
        for t in range(n_steps):
            fresh = t % repeats == 0
            if fresh:  # the next distinct input (frame), converted as SB3's preprocessing does
                base = (t // repeats) * size
                if ints[_H_IN_CONV] == 1:
                    _split(obs[b], base, divide, work, in0_off, ints[_H_IN_C], in_h, in_w, in_h * in_w, in_w,
                           ints[_H_IN_S], ints[_H_IN_PLANE], ints[_H_IN_COLS])
                else:
                    scale = np.float32(255.0) if divide else np.float32(1.0)
                    first = work[in0_off: in0_off + size]
                    for i in range(size):
                        first[i] = np.float32(obs[b, base + i]) / scale
            for layer in range(n_layers):
                r = spec + layer * _SPEC_WIDTH
                if layer > 0 or fresh:
                    if ints[r + _S_KIND] == _CONV:
                        _conv_current(work, ints[r + _S_IN_OFF], ints[r + _S_CUR_OFF], ints[r + _S_OUT_CH],
                                      ints[r + _S_RUN], ints[r + _S_FAN_IN], ints, ints[r + _S_TAPS], floats,
                                      ints[r + _S_W_OFF], ints[r + _S_B_OFF])
                    else:
                        _linear_current(work, ints[r + _S_IN_OFF], ints[r + _S_FAN_IN], ints[r + _S_CUR_OFF],
                                        ints[r + _S_WIDE], floats, ints[r + _S_W_OFF], ints[r + _S_B_OFF])
                _lif_step(work, ints[r + _S_CUR_OFF], ints[r + _S_V_OFF], ints[r + _S_SPK_OFF], ints[r + _S_WIDE], t == 0,
                          decay, threshold, row_counts, ints[r + _S_CNT_OFF])
                if ints[r + _S_NEXT_CONV] == 1:  # phase-split for the next convolution (fully connected: read in place)
                    _split(work, ints[r + _S_SPK_OFF], False, work, ints[r + _S_NEXT_OFF], ints[r + _S_OUT_CH],
                           ints[r + _S_OUT_H], ints[r + _S_OUT_W], ints[r + _S_RUN], ints[r + _S_ROW], ints[r + _S_NEXT_S],
                           ints[r + _S_NEXT_PLANE], ints[r + _S_NEXT_COLS])
            if rate:  # spiking output neurons
                _linear_current(work, ro_off, ro_in, ocur_off, n_actions, floats, out_wt, out_b)
                _lif_step(work, ocur_off, ov_off, ocur_off, n_actions, t == 0, decay, threshold, row_counts, ocnt_off)
            else:  # non-spiking integrator: logit = W (sum_t w_t x[t]) + b sum_t w_t, as forward_fast computes it
                w = floats[step_w + t]
                for i in range(ro_in):
                    work[pool_off + i] += w * work[ro_off + i]
        best = 0
        for a in range(n_actions):
            if rate:
                value = rate_scale * (row_counts[ocnt_off + a] / np.float32(n_steps))
            else:
                value = floats[out_b + a] * total
                for i in range(ro_in):
                    value += floats[out_w + a * ro_in + i] * work[pool_off + i]
            logits[b, a] = value
            if value > logits[b, best]:
                best = a
        actions[b] = best


class _Layout:
    """Geometry of a layer: its input buffer (phase-split for a convolution, flat for a fully connected
    layer) and where its outputs lie (``sources``)."""

    def __init__(self, synapse: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        self.conv = isinstance(synapse, nn.Conv2d)
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if not isinstance(synapse, nn.Conv2d):  # input: flat; outputs: as they are
            self.size, self.wide = int(np.prod(in_shape)), int(np.prod(out_shape))
            return
        channels, height, width = in_shape
        kernel, stride = synapse.kernel_size, synapse.stride
        if kernel[0] != kernel[1] or stride[0] != stride[1] or any(synapse.padding) or max(synapse.dilation) > 1 \
                or synapse.groups != 1:
            raise NotImplementedError("lean path: square kernels and strides, no padding, dilation or groups")
        self.kernel, self.stride, self.channels = kernel[0], stride[0], channels
        s = self.stride
        self.rows, self.cols = -(-height // s), -(-width // s)  # ceil
        reach = (self.kernel - 1) // s
        self.plane = (self.rows + reach + 1) * self.cols  # room for the unused columns read past the last row
        self.size = channels * s * s * self.plane
        self.out_rows, self.out_cols = (height - self.kernel) // s + 1, (width - self.kernel) // s + 1
        assert (self.out_rows, self.out_cols) == tuple(out_shape[1:]), (in_shape, out_shape)
        self.run = self.out_rows * self.cols  # currents per output channel: output rows of the plane's width
        self.wide = out_shape[0] * self.run

    def taps(self) -> np.ndarray:
        """Offset in the input buffer of the run each kernel tap ``(ic, ky, kx)`` reads (C order, as the weights)."""
        s, k = self.stride, self.kernel
        c, y, x = np.meshgrid(np.arange(self.channels), np.arange(k), np.arange(k), indexing="ij")
        return (((c * s + y % s) * s + x % s) * self.plane + (y // s) * self.cols + x // s).ravel()

    def sources(self) -> np.ndarray:
        """Where each output neuron (C order of ``out_shape``) lies among the layer's ``wide`` outputs."""
        if not self.conv:
            return np.arange(self.wide)
        oc, oy, ox = np.meshgrid(*(np.arange(n) for n in self.out_shape), indexing="ij")
        return (oc * self.run + oy * self.cols + ox).ravel()


def _folded(synapse: nn.Linear | nn.Conv2d, norm: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 weight and bias of ``synapse`` with the evaluation-mode batch normalisation after it folded in."""
    weight = synapse.weight.detach().double().cpu().numpy()
    bias = np.zeros(weight.shape[0]) if synapse.bias is None else synapse.bias.detach().double().cpu().numpy()
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        weight, bias = fold_norm(weight, bias, norm)
    return weight, bias


def _spread(weight_t: np.ndarray, sources: np.ndarray, wide: int) -> np.ndarray:
    """Rows of a transposed weight ``[n_in, n_out]`` moved to where its inputs lie among ``wide`` values
    (zero rows for the unused positions)."""
    spread = np.zeros((wide, weight_t.shape[1]), weight_t.dtype)
    spread[sources] = weight_t
    return spread


class LeanStudent:
    """A :class:`~sb3_snn.sdn.network.SpikingStudent` in evaluation mode compiled into flat tables for
    :func:`_lean_kernel` (see the module docstring). A snapshot: build a new one when the weights change
    (:meth:`SpikingStudent.lean <sb3_snn.sdn.network.SpikingStudent.lean>` does).

    :param network: the student, a :class:`~sb3_snn.sdn.network.SpikingStudent` (evaluation mode, on the
        CPU; typed ``Any`` because :mod:`sb3_snn.sdn.network` imports this module, not the other way round)
    """

    def __init__(self, network: Any) -> None:
        if network.training:
            raise ValueError("the lean path is for inference: put the student in evaluation mode first")
        self.n_actions = network.n_actions
        self.input_size = int(np.prod(network.input_shape))
        self._pool: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []  # work area, logits, counts
        self._build(network)

    def _build(self, network: Any) -> None:
        steps = network.n_steps
        distinct = network.n_frames if network.encoding == "frames" else 1
        layouts = [_Layout(s, *shapes) for s, shapes in zip(network.synapses, network.shapes, strict=True)]
        offset = 0
        ints: list[np.ndarray] = [np.zeros(0, np.int64)]
        floats: list[np.ndarray] = [np.zeros(_F_HEADER, np.float32)]
        positions = {"int": 0, "float": _F_HEADER}

        def reserve(size: int) -> int:  # a region of the work area
            nonlocal offset
            start, offset = offset, offset + int(size)
            return start

        def add(values: np.ndarray, kind: str) -> int:  # a table; its position in ints (after header and spec) / floats
            array = np.asarray(values, np.int64 if kind == "int" else np.float32).ravel()
            (ints if kind == "int" else floats).append(array)
            start, positions[kind] = positions[kind], positions[kind] + array.size
            return start

        spec = np.zeros((len(layouts), _SPEC_WIDTH), np.int64)
        first_size = layouts[0].size if layouts else network.out_shape[0][0]
        in0 = reserve(first_size)
        previous: tuple[_Layout, int] | None = None  # the layer before and its spike buffer
        self.counts_layout: list[tuple[str, int, np.ndarray, tuple[int, ...]]] = []
        count_off = 0
        for i, (layout, synapse) in enumerate(zip(layouts, network.synapses, strict=True)):
            row = spec[i]
            weight, bias = _folded(synapse, network.norms[i] if network.norm is not None else None)
            row[_S_B_OFF] = add(bias, "float")
            row[_S_WIDE] = layout.wide
            if layout.conv:
                row[_S_KIND], row[_S_OUT_CH], row[_S_RUN], row[_S_ROW] = _CONV, layout.out_shape[0], layout.run, layout.cols
                row[_S_OUT_H], row[_S_OUT_W] = layout.out_rows, layout.out_cols
                row[_S_FAN_IN] = weight[0].size
                row[_S_W_OFF] = add(weight, "float")  # [oc, ic, ky, kx]: one row of taps per output channel
                row[_S_TAPS] = add(layout.taps(), "int")
                row[_S_IN_OFF] = in0 if previous is None else reserve(layout.size)
            else:
                row[_S_KIND], row[_S_OUT_CH], row[_S_RUN] = _LINEAR, 1, layout.wide
                weight_t = weight.T  # [in, out]: one row per input
                if previous is None:
                    row[_S_IN_OFF], row[_S_FAN_IN] = in0, weight_t.shape[0]
                else:  # the previous layer's spikes where they lie
                    weight_t = _spread(weight_t, previous[0].sources(), previous[0].wide)
                    row[_S_IN_OFF], row[_S_FAN_IN] = previous[1], previous[0].wide
                row[_S_W_OFF] = add(weight_t, "float")
            if previous is not None and layout.conv:  # the previous layer phase-splits its spikes into this input
                before = spec[i - 1]
                before[_S_NEXT_CONV], before[_S_NEXT_OFF], before[_S_NEXT_S] = 1, row[_S_IN_OFF], layout.stride
                before[_S_NEXT_PLANE], before[_S_NEXT_COLS] = layout.plane, layout.cols
                if not previous[0].conv:
                    raise NotImplementedError("lean path: a convolution after a fully connected layer")
            row[_S_CUR_OFF], row[_S_V_OFF], row[_S_SPK_OFF] = reserve(layout.wide), reserve(layout.wide), reserve(layout.wide)
            row[_S_CNT_OFF] = count_off
            self.counts_layout.append((network.names[i], count_off, layout.sources(), layout.out_shape))
            count_off += layout.wide
            previous = (layout, int(row[_S_SPK_OFF]))
        header = np.zeros(_HEADER, np.int64)
        out_weight, out_bias = _folded(network.out, None)  # [actions, in]
        out_weight_t = out_weight.T
        if previous is not None:
            out_weight_t = _spread(out_weight_t, previous[0].sources(), previous[0].wide)
        ro_in = out_weight_t.shape[0]
        header[_H_DISTINCT], header[_H_REPEATS], header[_H_STEPS] = distinct, steps // distinct, steps
        header[_H_LAYERS], header[_H_RATE] = len(layouts), network.readout == "rate"
        header[_H_RO_IN], header[_H_ACTIONS] = ro_in, network.n_actions
        header[_H_IN0_OFF], header[_H_RO_OFF] = in0, in0 if previous is None else previous[1]
        header[_H_POOL_OFF] = reserve(ro_in)
        header[_H_OCUR_OFF], header[_H_OV_OFF] = reserve(network.n_actions), reserve(network.n_actions)
        header[_H_OCNT_OFF] = count_off
        if network.readout == "rate":
            self.counts_layout.append(("out", count_off, np.arange(network.n_actions), (network.n_actions,)))
            count_off += network.n_actions
        step_weights, total = network._readout_weights(steps, th.float32, th.device("cpu"))
        header[_H_STEPW] = add(step_weights.numpy(), "float")
        header[_H_TOTAL] = add(total.reshape(1).numpy(), "float")
        header[_H_OUTW] = add(out_weight_t.T, "float")  # [actions, ro_in]
        header[_H_OUTWT] = add(out_weight_t, "float")  # [ro_in, actions]
        header[_H_OUTB] = add(out_bias, "float")
        header[_H_SPEC] = _HEADER
        if layouts and layouts[0].conv:
            first = layouts[0]
            header[_H_IN_CONV], header[_H_IN_S] = 1, first.stride
            header[_H_IN_PLANE], header[_H_IN_COLS] = first.plane, first.cols
            header[_H_IN_C], header[_H_IN_H], header[_H_IN_W] = first.in_shape
        spec[:, _S_TAPS] += _HEADER + spec.size  # table positions -> absolute
        self.ints = np.concatenate([header, spec.ravel(), *ints])
        self.floats = np.concatenate(floats)
        self.floats[_F_DECAY], self.floats[_F_THRESHOLD] = network.decay, network.threshold
        self.floats[_F_RATE_SCALE], self.floats[_F_READOUT_DECAY] = network.rate_scale, network.readout_decay
        self.work_size, self.n_counts = offset, count_off

    def __call__(
        self, obs: np.ndarray, divide: bool = False, logits: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Logits ``[batch, n_actions]`` (float32; ``None`` unless ``logits``), greedy actions ``[batch]``
        (int64) and raw spike counts (float32, read them with :meth:`split_counts`; a buffer reused by
        later calls) of raw observations.

        :param obs: ``[batch, *input_shape]``; uint8 or any real dtype (converted to float32 as torch's
            ``.float()`` does)
        :param divide: divide by 255 (SB3's image preprocessing)
        :param logits: return a copy of the logits (``predict`` needs only the actions)
        """
        batch = obs.shape[0]
        flat = obs.reshape(batch, self.input_size)
        if flat.dtype is not _UINT8 and flat.dtype is not _FLOAT32:  # as torch's .float(); uint8 converted in the kernel
            flat = flat.astype(np.float32)
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)
        try:
            work, out, counts = self._pool.pop()  # list.pop is atomic: two threads never share a work area
        except IndexError:
            work, out, counts = np.zeros(self.work_size, np.float32), None, None
        if out is None or out.shape[0] != batch:
            out, counts = np.empty((batch, self.n_actions), np.float32), np.empty((batch, self.n_counts), np.float32)
        assert counts is not None  # pooled together with its logits buffer
        actions = np.empty(batch, np.int64)
        _lean_kernel(flat, divide, self.ints, self.floats, work, out, actions, counts)
        self._pool.append((work, out, counts))
        return (out.copy() if logits else None), actions, counts

    def split_counts(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Spike counts ``[batch, *shape]`` per layer (as :attr:`SpikingStudent.last_spike_counts`) from
        the raw counts :meth:`__call__` returned."""
        batch = counts.shape[0]
        return {name: counts[:, start + sources].reshape(batch, *shape) for name, start, sources, shape in self.counts_layout}

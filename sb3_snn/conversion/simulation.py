"""Integrate-and-fire simulation of a converted network: a fast layer-by-layer path and an exact
per-step reference.

Neuron semantics (those of :mod:`sb3_snn.spiking.description` with ``decay = 1``,
``reset = "subtract"``), for one neuron and steps ``t = 1..T``::

    v[t] = v[t-1] + I[t]                  (I[t] = W · s_in[t] + b, the bias every step)
    s[t] = 1 if v[t] >= V_thr else 0
    v[t] = v[t] - V_thr * s[t]            (reset by subtraction)

The network is feed-forward, so a layer's whole spike train depends only on the previous layer's
whole spike train. The fast path therefore runs **layer by layer with time batched**, and works on
**cumulative spike counts** ``N[t] = sum_{tau <= t} s[tau]`` rather than on spikes: a synaptic layer
is linear, so the cumulative input current of the next layer is

    S[t] = sum_{tau <= t} I[tau] = W · N_in[t] + t b

-- one convolution / matmul over ``[T * batch, ...]`` gives ``S`` for every step directly (no
per-step currents, no cumulative sum over time). The neuron dynamics over time are then solved
without a per-step network pass:

* **First layer** (constant analog input, current ``z`` every step): the spike count after ``t``
  steps is ``n[t] = clip(floor(t z / V_thr), 0, t)`` for *any* ``z`` (``z <= 0``: never fires;
  ``z >= V_thr``: fires every step; in between the count is the floor). No scan at all.
* **Later layers**: with ``f[t] = floor(S[t] / V_thr)``, a neuron fires at step ``t`` iff
  ``S[t] - V_thr n[t-1] >= V_thr``, i.e. iff ``f[t] >= n[t-1] + 1``; so, exactly,
  ``n[t] = clamp(f[t], n[t-1], n[t-1] + 1)`` (at most one spike per step; negative currents are fine,
  there is no lower bound on ``v``). Wide layers on a CPU evaluate that for all neurons at once, one
  in-place ``clamp`` per step. Narrow layers and GPUs use the library ``cummax``: when the upper bound
  never binds (the membrane before reset stays below ``2 V_thr``, e.g. ``I[t] <= V_thr`` every step),
  ``n[t] = max(0, max_{tau <= t} f[tau])``; this is checked per neuron *on the result* (exactly:
  ``n[t] - n[t-1] <= 1`` for all ``t``, see :func:`solve_cumulative`) and the neurons that fail (several
  coincident input spikes) go through the clamp recurrence.

Work that cannot change a spike is skipped, exactly: input channels (convolution) or input features
(linear) that never spike during the ``T`` steps contribute nothing to ``W · N_in``, so they are
dropped from the time-batched product (a trained ReLU network has many: in the Pong actor 14 of 32,
24 of 64 and 14 of 64 channels and about half the features fed to the linear layer stay silent).
Convolutions run on ``channels_last`` tensors (oneDNN's native layout on CPUs).

The robust readout ``f = n(T)/T + V(T)/(T V_thr)`` of the last layer equals ``S(T)/(T V_thr)``, the
time-averaged input current (reset by subtraction removes exactly ``V_thr`` per spike).

Options beyond the paper's method (both exact in the fast path and the reference):

* ``bias_offset``: an extra current added every step to every *hidden* neuron (not the output
  layer). ``ConvertedQPolicy(rounding="round")`` uses ``V_thr / (2T)``: ``V_thr / 2`` in all over
  the ``T`` steps -- the charge of an initial membrane potential of ``V_thr / 2``, delivered as a
  bias, so that the final spike counts round instead of flooring (exactly for a constant current:
  ``n(T) = floor(T z / V_thr + 1/2)``). Being a bias, every backend can run it.
* ``readout="robust_hidden"``: the output layer applied to ``ReLU`` of the last *hidden* layer's
  robust readout (its time-averaged input current, offset removed) -- i.e. the last hidden layer's
  leftover potential is passed on as a fractional spike. This makes the last hidden layer an analog
  (ReLU-of-mean-current) layer at readout time; a chip has to read that layer's membranes.

State carry-over (``initial_potential``, exact in both paths): hidden neurons may start an action
with the membrane they ended the previous one with, ``v[0] = v0``, instead of 0. The dynamics above hold
with ``S[t]`` replaced by ``v0 + S[t]`` (the membrane before the spike test at step ``t`` is
``v0 + S[t] - V_thr n[t-1]``), so a layer with an initial membrane goes through the same recurrence
(the first layer too: its closed form assumes ``v[0] = 0``). The output layer always starts at 0: its
robust readout is this action's time-averaged input current.

Float rounding: the fast path sums currents in a different order from the per-step loop, so in
float32 a membrane that lands within rounding error of the threshold can fire one step apart. With
dyadic weights/inputs (all sums exact) or in float64 both paths give identical spikes; the tests check
both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard, cast

import torch as th
from torch import nn
from torch.nn import functional as F

#: Readouts of the last layer.
READOUTS = ("robust", "rate", "robust_hidden")
#: Up to this many neurons (x batch) per layer the library ``cummax`` (+ check) is used on CPU; above it,
#: the per-step clamp over the whole layer (one vectorised op pair per step) is faster.
SMALL_SCAN = 512
#: Drop silent inputs of a layer from the time-batched product when at most this share is active.
PRUNE_BELOW = 0.95


@dataclass
class IFSimulation:
    """The result of simulating a batch of observations for ``steps`` steps.

    :param outputs: readout values ``[batch, n_out]`` (greedy action = argmax)
    :param spike_counts: per spiking layer index, total spike counts ``[batch, *shape]``
    :param final_potential: per spiking layer index, membrane after the last step ``[batch, *shape]``
    :param mean_current: last layer's time-averaged input current ``[batch, n_out]``
    :param fast_fraction: per spiking layer index, share of neurons solved without a time loop
    """

    outputs: th.Tensor
    spike_counts: dict[int, th.Tensor]
    final_potential: dict[int, th.Tensor]
    mean_current: th.Tensor
    fast_fraction: dict[int, float] = field(default_factory=dict)


def is_synaptic(layer: nn.Module) -> TypeGuard[nn.Linear | nn.Conv2d]:
    """Whether ``layer`` carries weights followed by IF neurons (``Linear`` or ``Conv2d``)."""
    return isinstance(layer, (nn.Linear, nn.Conv2d))


def first_layer_counts(z: th.Tensor, steps: int, threshold: float = 1.0) -> th.Tensor:
    """Cumulative spike counts of IF neurons driven by a constant current, no scan.

    :param z: constant input current per step ``[batch, ...]``
    :param steps: number of steps ``T``
    :param threshold: ``V_thr``
    :return: ``n[t]`` for ``t = 0..T``, shape ``[T + 1, batch, ...]`` (``n[0] = 0``)
    """
    z = z.detach()
    t = th.arange(steps + 1, dtype=z.dtype, device=z.device)
    counts = th.outer(t, z.reshape(-1) / threshold)  # t z / V_thr for every (t, neuron)
    counts.floor_().clamp_min_(0)  # n[t] = floor(t z / V_thr); z <= 0: never fires
    if bool((z > threshold).any()):
        th.minimum(counts, t[:, None], out=counts)  # at most one spike per step: n[t] <= t
    return counts.reshape(steps + 1, *z.shape)


def solve_cumulative(
    cumulative: th.Tensor, threshold: float = 1.0, fast: bool = True, in_place: bool = False
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """IF neurons (reset by subtraction, ``v[0] = 0``) from their cumulative input current.

    With ``f[t] = floor(S[t] / V_thr)`` a neuron fires at step ``t`` iff ``S[t] - V_thr n[t-1] >= V_thr``,
    i.e. iff ``f[t] >= n[t-1] + 1``; so, exactly, ``n[t] = clamp(f[t], n[t-1], n[t-1] + 1)`` (at most
    one spike per step, never a negative count). Two ways to evaluate it:

    * wide layers on a CPU: that recurrence for every neuron, one in-place ``clamp`` per step over the
      whole layer (cheaper than anything that needs a check and a fallback);
    * narrow layers and GPUs: the library ``cummax`` -- when the clamp's upper bound never binds,
      ``n[t] = max(0, max_{tau <= t} f[tau])`` -- then an exact check on the result (the bound binds
      somewhere iff ``n[t] - n[t-1] > 1`` for some ``t``), and the recurrence for the neurons that fail.

    :param cumulative: ``S[t] = sum_{tau <= t} I[tau]`` for ``t = 1..T``, shape ``[T, neurons]``
    :param threshold: ``V_thr``
    :param fast: ``False``: the plain per-step membrane loop for every neuron (for timing and tests)
    :param in_place: the counts may overwrite ``cumulative`` (saves a large allocation)
    :return: cumulative counts ``n[t]`` for ``t = 1..T`` ``[T, neurons]``, final membrane ``[neurons]``
        and a bool mask ``[neurons]`` of the neurons solved by the cumulative-max identity alone
    """
    steps = cumulative.shape[0]
    last_total = cumulative[-1].clone()  # S(T)
    valid = th.zeros(cumulative.shape[1], dtype=th.bool, device=cumulative.device)
    if not fast:
        current = th.diff(cumulative, dim=0, prepend=th.zeros_like(cumulative[:1]))  # I[t] = S[t] - S[t-1]
        counts = _if_loop(current, threshold)[0][1:]
    elif cumulative.shape[1] > SMALL_SCAN and cumulative.device.type == "cpu":
        counts = cumulative if in_place else cumulative.clone()
        if threshold != 1.0:
            counts.div_(threshold)
        _capped_counts(counts.floor_())
    else:
        scaled = cumulative if threshold == 1.0 else cumulative / threshold
        counts = th.cummax(th.floor(scaled).clamp_min_(0), dim=0).values  # n[t] = max(0, max f[tau])
        jump = th.sub(counts[1:], counts[:-1]).amax(dim=0) if steps > 1 else th.zeros_like(counts[0])
        valid = th.maximum(jump, counts[0]) <= 1  # the upper bound never binds: the identity is exact
        if not bool(valid.all()):
            bad = (~valid).nonzero().squeeze(1)
            part = th.floor(scaled.index_select(1, bad))
            counts.index_copy_(1, bad, _capped_counts(part))
    v_final = last_total.sub_(counts[-1], alpha=threshold)  # V(T) = S(T) - V_thr n(T)
    return counts, v_final, valid


def _capped_counts(floors: th.Tensor) -> th.Tensor:
    """In place: ``f[t] -> n[t] = clamp(f[t], n[t-1], n[t-1] + 1)`` over ``[T, neurons]`` (``n[0] = 0``)."""
    rows = floors.unbind(0)
    rows[0].clamp_(0, 1)
    upper = th.empty_like(rows[0])
    for t in range(1, len(rows)):
        th.add(rows[t - 1], 1, out=upper)
        th.clamp(rows[t], rows[t - 1], upper, out=rows[t])  # at most one spike per step, never fewer than 0
    return floors


def if_dynamics(
    current: th.Tensor, threshold: float = 1.0, fast: bool = True
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """Solve IF neurons (reset by subtraction, ``v[0] = 0``) for a whole current train.

    :param current: input current ``I[t]`` for ``t = 1..T``, shape ``[T, ...]``
    :param threshold: ``V_thr``
    :param fast: use the cumulative-max identity where it holds (else loop all)
    :return: cumulative counts ``[T + 1, ...]`` (``n[0] = 0``), spikes ``[T, ...]``, final membrane
        ``[...]``, and a bool mask ``[...]`` of the neurons solved by the identity
    """
    steps, shape = current.shape[0], current.shape[1:]
    flat = current.detach().reshape(steps, -1)
    counts, v_final, valid = solve_cumulative(th.cumsum(flat, dim=0), threshold, fast)
    counts = th.cat([th.zeros_like(counts[:1]), counts])
    spikes = th.diff(counts, dim=0)
    return (counts.reshape(steps + 1, *shape), spikes.reshape(steps, *shape), v_final.reshape(shape),
            valid.reshape(shape))


def _if_loop(current: th.Tensor, threshold: float) -> tuple[th.Tensor, th.Tensor]:
    """Fused per-step IF loop over ``[T, ...]`` currents; returns cumulative counts and V(T).

    Three in-place vector ops per step, no allocation inside the loop.
    """
    steps = current.shape[0]
    spikes = th.zeros((steps + 1, *current.shape[1:]), dtype=current.dtype, device=current.device)
    v = th.zeros(current.shape[1:], dtype=current.dtype, device=current.device)
    rows, out = current.unbind(0), spikes.unbind(0)
    for t in range(steps):
        v.add_(rows[t])  # v[t] = v[t-1] + I[t]
        th.ge(v, threshold, out=out[t + 1])  # s[t] = [v[t] >= V_thr]
        v.sub_(out[t + 1], alpha=threshold)  # reset by subtraction: v -= V_thr s[t]
    return th.cumsum(spikes, dim=0), v  # n[t] = sum_{tau<=t} s[tau]


def _apply(layer: nn.Linear | nn.Conv2d, x: th.Tensor, offset: float = 0.0) -> th.Tensor:
    """``layer(x)`` with ``offset`` added to its bias (``W x + (b + offset)``, as a description carries it)."""
    if not offset:
        return layer(x)
    bias = layer.bias + offset if layer.bias is not None else th.full(
        (_out_channels(layer),), offset, dtype=layer.weight.dtype, device=layer.weight.device)
    if isinstance(layer, nn.Linear):
        return F.linear(x, layer.weight, bias)
    return F.conv2d(x, layer.weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def _readout(readout: str, counts: th.Tensor, v_final: th.Tensor, steps: int, threshold: float) -> th.Tensor:
    if readout == "rate":
        return counts / steps  # r = n(T) / T
    if readout in ("robust", "robust_hidden"):
        return counts / steps + v_final / (steps * threshold)  # f = r + V(T) / (T V_thr)
    raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")


def _check(layers: list[nn.Module], readout: str) -> tuple[int, int | None]:
    """Index of the last synaptic layer and of the one before it (``None`` if there is none)."""
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
    synaptic = [i for i, layer in enumerate(layers) if is_synaptic(layer)]
    if not synaptic:
        raise ValueError("the network has no Linear/Conv2d layer")
    hidden = synaptic[-2] if len(synaptic) > 1 else None
    if readout == "robust_hidden" and hidden is None:
        raise ValueError("readout 'robust_hidden' needs a hidden layer before the output layer")
    return synaptic[-1], hidden


def _hidden_readout(
    layers: list[nn.Module], hidden: int, last: int, mean_rate: th.Tensor, threshold: float
) -> th.Tensor:
    """``robust_hidden``: the output layer on ``ReLU`` of the last hidden layer's robust readout.

    :param mean_rate: the last hidden layer's time-averaged input current / ``V_thr`` (offset removed)
    """
    h = th.relu(mean_rate)
    for layer in layers[hidden + 1 : last]:  # Flatten between them
        h = layer(h)
    return layers[last](h) / threshold  # the currents are in units of V_thr


@dataclass
class _Train:
    """A layer's cumulative spike counts over time, as the next layer consumes them.

    :param counts: ``n[t]`` for ``t = 1..T``, ``[T * batch, *shape]`` (possibly ``channels_last``),
        restricted to ``channels`` when given
    :param final: ``n(T)`` ``[batch, *shape]`` (all channels)
    :param channels: indices of the channels (dim 1) present in ``counts``; ``None``: all
    """

    counts: th.Tensor
    final: th.Tensor
    channels: th.Tensor | None = None


def _time_column(steps: int, batch: int, like: th.Tensor) -> th.Tensor:
    """``t`` for every row of a ``[T * batch, ...]`` tensor, as a column ``[T * batch, 1]``."""
    t = th.arange(1, steps + 1, dtype=like.dtype, device=like.device)
    return t.repeat_interleave(batch).unsqueeze(1)


def _cumulative_current(
    layer: nn.Linear | nn.Conv2d, train: _Train, steps: int, batch: int, bias: th.Tensor | None
) -> th.Tensor:
    """``S[t] = W · N_in[t] + t b`` for every step, ``[T * batch, *out_shape]``; silent inputs dropped.

    Convolution outputs are ``channels_last``; ``bias`` is the per-step bias (offset included).
    """
    counts = train.counts
    if isinstance(layer, nn.Conv2d):
        weight = layer.weight
        channels = train.channels
        if channels is not None and layer.groups != 1:  # grouped convolution: put the silent channels back
            full = counts.new_zeros((counts.shape[0], train.final.shape[1], *counts.shape[2:]))
            counts = full.contiguous(memory_format=th.channels_last).index_copy_(1, channels, counts)
            channels = None
        if channels is None and layer.groups == 1:
            active = (train.final.amax(dim=(0, 2, 3)) > 0).nonzero().squeeze(1)
            if active.numel() <= PRUNE_BELOW * counts.shape[1]:  # drop channels that never fire
                channels = active
                rows, c, h, w = counts.shape
                memory = counts.permute(0, 2, 3, 1).reshape(-1, c)  # (a 2-D index_select is much faster)
                counts = memory.index_select(1, active).reshape(rows, h, w, -1).permute(0, 3, 1, 2)  # channels_last
        if channels is not None:
            weight = weight.index_select(1, channels)
        if weight.shape[1] == 0:  # every input silent: only the bias
            out_shape = _conv_out_shape(layer, tuple(counts.shape[2:]))
            cumulative = counts.new_zeros((counts.shape[0], layer.out_channels, *out_shape))
            cumulative = cumulative.contiguous(memory_format=th.channels_last)
        else:
            cumulative = F.conv2d(counts.contiguous(memory_format=th.channels_last),
                                  weight.contiguous(memory_format=th.channels_last), None,
                                  layer.stride, layer.padding, layer.dilation, layer.groups)
        if bias is not None:  # + t b (in place: keeps channels_last)
            cumulative.add_(_time_column(steps, batch, cumulative).reshape(-1, 1, 1, 1) * bias.reshape(1, -1, 1, 1))
        return cumulative
    # Linear: flatten the input in its logical (C, H, W) order, but gather from memory order
    final = train.final
    if counts.dim() == 4:
        rows, c, h, w = counts.shape
        memory = counts.permute(0, 2, 3, 1).reshape(rows, h * w * c)  # a view for channels_last counts
        channels = th.arange(c, device=counts.device) if train.channels is None else train.channels
        if train.channels is not None:
            final = final.index_select(1, train.channels)
        # input feature (C, H, W)-index of every column of ``memory`` (memory order H, W, C)
        logical = (channels.reshape(1, 1, -1) * (h * w) + th.arange(h, device=counts.device).reshape(-1, 1, 1) * w
                   + th.arange(w, device=counts.device).reshape(1, -1, 1)).reshape(-1)
        final = final.permute(0, 2, 3, 1).reshape(final.shape[0], -1)
    else:
        memory = counts.reshape(counts.shape[0], -1)
        logical = None
        final = final.reshape(final.shape[0], -1)
    weight = layer.weight
    active = (final.amax(dim=0) > 0).nonzero().squeeze(1)
    if active.numel() <= PRUNE_BELOW * memory.shape[1] and layer.out_features >= 16:  # drop silent features
        memory = memory.index_select(1, active)
        weight = weight.index_select(1, active if logical is None else logical[active])
    elif logical is not None:
        weight = weight.index_select(1, logical)
    if memory.shape[1]:
        cumulative = memory @ weight.t()
    else:
        cumulative = memory.new_zeros((memory.shape[0], layer.out_features))
    if bias is not None:
        cumulative.addcmul_(_time_column(steps, batch, cumulative), bias.reshape(1, -1))  # + t b
    return cumulative


def _conv_out_shape(layer: nn.Conv2d, size: tuple[int, ...]) -> tuple[int, int]:
    padding = cast(tuple[int, ...], layer.padding)  # numeric: extract_network refuses string padding
    height, width = (
        (size[d] + 2 * padding[d] - layer.dilation[d] * (layer.kernel_size[d] - 1) - 1) // layer.stride[d] + 1
        for d in range(2)
    )
    return height, width


def _neurons_view(cumulative: th.Tensor, steps: int) -> tuple[th.Tensor, tuple[int, ...] | None]:
    """``[T * batch, ...]`` -> ``[T, neurons]`` in memory order (channel-last for 4-D tensors).

    :return: the view (a copy only if the tensor is not ``channels_last``) and, for 4-D tensors, the
        channel-last shape ``(batch, H, W, C)`` per step
    """
    if cumulative.dim() == 4:
        rows, c, h, w = cumulative.shape
        last = cumulative.permute(0, 2, 3, 1)  # memory order when channels_last
        return last.reshape(steps, -1), (rows // steps, h, w, c)
    return cumulative.reshape(steps, -1), None


def _from_neurons(
    flat: th.Tensor, steps: int, batch: int, shape: tuple[int, ...], cl: tuple[int, ...] | None
) -> th.Tensor:
    """Inverse of :func:`_neurons_view` for ``[T, neurons]`` (or ``[neurons]`` with ``steps = 1``)."""
    if cl is not None:
        return flat.reshape(steps * batch, *cl[1:]).permute(0, 3, 1, 2)  # channels_last strides
    return flat.reshape(steps * batch, *shape)


def simulate_fast(
    layers: list[nn.Module],
    x: th.Tensor,
    steps: int,
    threshold: float = 1.0,
    readout: str = "robust",
    fast: bool = True,
    bias_offset: float = 0.0,
    initial_potential: dict[int, th.Tensor] | None = None,
) -> IFSimulation:
    """Fast simulation: layer by layer, time batched on cumulative counts, the dynamics solved with
    closed forms / one vectorised op per step, silent inputs dropped.

    :param layers: ``Linear``/``Conv2d`` (each followed by IF neurons) and ``Flatten`` modules
    :param x: analog input ``[batch, ...]`` (constant for all steps)
    :param steps: ``T``
    :param threshold: ``V_thr`` of every neuron
    :param readout: ``"robust"``, ``"rate"`` or ``"robust_hidden"``
    :param fast: ``False`` solves every layer after the first with the plain per-step membrane loop
    :param bias_offset: extra current per step for every hidden (not output) neuron
    :param initial_potential: per hidden layer index, the membrane ``[batch, *shape]`` its neurons start
        with (state carry-over; missing layers start at 0)
    """
    last, hidden = _check(layers, readout)
    initial = _check_initial(layers, last, initial_potential)
    counts: dict[int, th.Tensor] = {}
    potentials: dict[int, th.Tensor] = {}
    fast_fraction: dict[int, float] = {}
    train: _Train | None = None
    batch = x.shape[0]
    cumulative_last: th.Tensor | None = None
    hidden_rate: th.Tensor | None = None
    with th.no_grad():
        for index, layer in enumerate(layers):
            if not is_synaptic(layer):
                if train is None:
                    x = layer(x)
                continue  # Flatten between spiking layers: the next Linear flattens its input
            offset = bias_offset if index != last else 0.0
            v0 = initial.get(index)
            if train is None and v0 is None:  # first synaptic layer: constant analog input
                z = _apply(layer, x, offset)
                final = th.floor((z / threshold) * steps).clamp_(0, steps)  # n(T) = clip(floor(T z / V_thr), 0, T)
                v_final = steps * z - threshold * final  # V(T) = T z - V_thr n(T)
                fast_fraction[index] = 1.0
                if index == last:
                    cumulative_last = steps * z
                else:
                    train = _first_train(z, steps, threshold, final)
                if index == hidden:
                    hidden_rate = (z - offset) / threshold
            else:
                if train is None:  # first layer starting from a carried-over membrane: S[t] = t z
                    z = _apply(layer, x, offset)
                    cumulative = _constant_cumulative(z, steps)
                else:
                    bias = layer.bias
                    if offset:
                        bias = (bias + offset) if bias is not None else th.full(
                            (_out_channels(layer),), offset, dtype=layer.weight.dtype, device=layer.weight.device)
                    cumulative = _cumulative_current(layer, train, steps, batch, bias)
                flat, cl = _neurons_view(cumulative, steps)
                shape = tuple(cumulative.shape[1:])
                total = _from_neurons(flat[-1], 1, batch, shape, cl).clone()  # S(T)
                if v0 is not None:  # v[0] = v0: the dynamics of v0 + S[t] (module docstring)
                    start = (v0.permute(0, 2, 3, 1) if cl is not None else v0).reshape(1, -1)
                    flat = flat + start.to(flat.dtype)
                n, v_final, valid = solve_cumulative(flat, threshold, fast=fast, in_place=True)
                fast_fraction[index] = float(valid.to(th.float32).mean())
                final = _from_neurons(n[-1], 1, batch, shape, cl).clone(memory_format=th.contiguous_format)
                v_final = _from_neurons(v_final, 1, batch, shape, cl).contiguous()
                if index == hidden:
                    hidden_rate = (total / steps - offset) / threshold
                if index == last:
                    cumulative_last = total
                    train = None
                else:
                    train = _Train(_from_neurons(n, steps, batch, shape, cl), final)
            counts[index] = final
            potentials[index] = v_final
    assert cumulative_last is not None
    if readout == "robust_hidden":
        assert hidden is not None and hidden_rate is not None
        outputs = _hidden_readout(layers, hidden, last, hidden_rate, threshold)
    else:
        outputs = _readout(readout, counts[last], potentials[last], steps, threshold)
    return IFSimulation(outputs, counts, potentials, cumulative_last / steps, fast_fraction)


def _check_initial(
    layers: list[nn.Module], last: int, initial_potential: dict[int, th.Tensor] | None
) -> dict[int, th.Tensor]:
    """The initial membranes, checked: only hidden synaptic layers may have one."""
    initial = dict(initial_potential or {})
    for index in initial:
        if index == last or not (0 <= index < len(layers)) or not is_synaptic(layers[index]):
            raise ValueError(
                f"initial_potential for layer {index}: only hidden Linear/Conv2d layers carry a membrane over "
                f"(the output layer {last} is read out and starts at 0 every action)"
            )
    return initial


def _constant_cumulative(z: th.Tensor, steps: int) -> th.Tensor:
    """``S[t] = t z`` for ``t = 1..T`` as ``[T * batch, *shape]`` (``channels_last`` for 4-D ``z``)."""
    t = th.arange(1, steps + 1, dtype=z.dtype, device=z.device).reshape(-1, *([1] * z.dim()))
    cumulative = (t * z.unsqueeze(0)).reshape(steps * z.shape[0], *z.shape[1:])
    return cumulative.contiguous(memory_format=th.channels_last) if z.dim() == 4 else cumulative


def _out_channels(layer: nn.Linear | nn.Conv2d) -> int:
    return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features


def _first_train(z: th.Tensor, steps: int, threshold: float, final: th.Tensor) -> _Train:
    """Counts of the first layer for ``t = 1..T`` (closed form), only for channels that ever fire."""
    rate = (z / threshold).clamp(0.0, 1.0)  # floor(t min(z / V_thr, 1)) = clip(floor(t z / V_thr), 0, t)
    t = th.arange(1, steps + 1, dtype=z.dtype, device=z.device)
    channels = None
    if z.dim() == 4:
        active = (final.amax(dim=(0, 2, 3)) > 0).nonzero().squeeze(1)
        if active.numel() < z.shape[1]:  # channels that never fire are left out
            channels = active
            rate = rate.index_select(1, channels)
        rate = rate.permute(0, 2, 3, 1)  # channel-last
    per_step = rate.reshape(1, -1)
    counts = (t.unsqueeze(1) * per_step).floor_()  # n[t] = floor(t z / V_thr)
    if z.dim() == 4:
        b, h, w, c = rate.shape
        return _Train(counts.reshape(steps * b, h, w, c).permute(0, 3, 1, 2), final, channels)
    return _Train(counts.reshape(steps * z.shape[0], *z.shape[1:]), final)


def simulate_reference(
    layers: list[nn.Module],
    x: th.Tensor,
    steps: int,
    threshold: float = 1.0,
    readout: str = "robust",
    bias_offset: float = 0.0,
    initial_potential: dict[int, th.Tensor] | None = None,
) -> IFSimulation:
    """Exact per-step reference: every step runs the whole network once (the textbook loop).

    :param layers: as for :func:`simulate_fast`
    :param x: analog input ``[batch, ...]``
    :param steps: ``T``
    :param threshold: ``V_thr``
    :param readout: ``"robust"``, ``"rate"`` or ``"robust_hidden"``
    :param bias_offset: extra current per step for every hidden (not output) neuron
    :param initial_potential: as for :func:`simulate_fast`
    """
    last, hidden = _check(layers, readout)
    counts: dict[int, th.Tensor] = {}
    potentials = {index: v.to(x.dtype).clone() for index, v in _check_initial(layers, last, initial_potential).items()}
    current_sum: th.Tensor | None = None
    hidden_sum: th.Tensor | None = None
    with th.no_grad():
        for _ in range(steps):
            h = x
            for index, layer in enumerate(layers):
                h = _apply(layer, h, bias_offset if index != last else 0.0) if is_synaptic(layer) else layer(h)
                if not is_synaptic(layer):
                    continue
                if index == last:
                    current_sum = h.clone() if current_sum is None else current_sum + h
                if index == hidden:
                    hidden_sum = h.clone() if hidden_sum is None else hidden_sum + h
                v = potentials.get(index, th.zeros_like(h)) + h  # v[t] = v[t-1] + I[t]
                spikes = (v >= threshold).to(h.dtype)  # s[t] = [v[t] >= V_thr]
                potentials[index] = v - threshold * spikes  # reset by subtraction
                counts[index] = counts.get(index, th.zeros_like(h)) + spikes
                h = spikes
    assert current_sum is not None
    if readout == "robust_hidden":
        assert hidden is not None and hidden_sum is not None
        outputs = _hidden_readout(layers, hidden, last, (hidden_sum / steps - bias_offset) / threshold, threshold)
    else:
        outputs = _readout(readout, counts[last], potentials[last], steps, threshold)
    return IFSimulation(outputs, counts, potentials, current_sum / steps)

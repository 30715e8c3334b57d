"""Integrate-and-fire simulation of a converted network: a fast layer-by-layer path and an exact
per-step reference.

Neuron semantics (those of :mod:`sb3_snn.spiking.description` with ``decay = 1``,
``reset = "subtract"``), for one neuron and steps ``t = 1..T``::

    v[t] = v[t-1] + I[t]                  (I[t] = W · s_in[t] + b, the bias every step)
    s[t] = 1 if v[t] >= V_thr else 0
    v[t] = v[t] - V_thr * s[t]            (reset by subtraction)

The network is feed-forward, so a layer's whole spike train depends only on the previous layer's
whole spike train. The fast path therefore runs **layer by layer with time batched**: one
convolution / matmul over ``[T * batch, ...]`` gives every step's input current, and the neuron
dynamics over time are solved without a Python loop where the maths allows it:

* **First layer** (constant analog input, current ``z`` every step): the spike count after ``t``
  steps is ``n[t] = clip(floor(t z / V_thr), 0, t)`` for *any* ``z`` (``z <= 0``: never fires;
  ``z >= V_thr``: fires every step; in between the count is the floor). No scan at all.
* **Later layers**: with ``S[t] = sum_{tau <= t} I[tau]``, if the membrane before the reset never
  reaches ``2 V_thr`` (guaranteed when ``I[t] <= V_thr`` every step), one spike per step always
  suffices and ``n[t] = max(0, max_{tau <= t} floor(S[tau] / V_thr))`` -- a cumulative sum and a
  cumulative max. The condition is checked per neuron *on the result* (``S[t] - V_thr n[t-1] <
  2 V_thr`` for all ``t``, which is exact: see :func:`if_dynamics`); neurons that fail it (strong
  positive currents, e.g. several coincident input spikes) are recomputed with the fused per-step
  loop. Negative currents are fine (no lower bound on ``v``).

The robust readout ``f = n(T)/T + V(T)/(T V_thr)`` of the last layer equals ``S(T)/(T V_thr)``, the
time-averaged input current (reset by subtraction removes exactly ``V_thr`` per spike).

Float rounding: the fast path sums currents in a different order from the per-step loop, so in
float32 a membrane that lands within rounding error of the threshold can fire one step apart. With
dyadic weights/inputs (all sums exact) or in float64 both paths give identical spikes; the tests check
both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch as th
from torch import nn

#: Readouts of the last layer.
READOUTS = ("robust", "rate")
#: Up to this many neurons (x batch) per layer the library ``cumsum``/``cummax`` are used on CPU;
#: above it, in-place loops over time (each step one vectorised op) are faster.
SMALL_SCAN = 512


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


def is_synaptic(layer: nn.Module) -> bool:
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


def if_dynamics(
    current: th.Tensor, threshold: float = 1.0, fast: bool = True
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """Solve IF neurons (reset by subtraction, ``v[0] = 0``) for a whole current train.

    On a CPU the scans run as in-place loops over time, vectorised over neurons (much faster than
    ``th.cumsum``/``th.cummax`` along the leading dimension) unless the layer is narrow.

    :param current: input current ``I[t]`` for ``t = 1..T``, shape ``[T, ...]``
    :param threshold: ``V_thr``
    :param fast: use the cumulative-sum / cumulative-max identity where it holds (else loop all)
    :return: cumulative counts ``[T + 1, ...]`` (``n[0] = 0``), spikes ``[T, ...]``, final membrane
        ``[...]``, and a bool mask ``[...]`` of the neurons solved by the identity
    """
    steps, shape = current.shape[0], current.shape[1:]
    flat = current.detach().reshape(steps, -1)
    if not fast:
        counts, v_final = _if_loop(flat, threshold)
        valid = th.zeros(flat.shape[1], dtype=th.bool, device=current.device)
        spikes = th.diff(counts, dim=0)
        return (counts.reshape(steps + 1, *shape), spikes.reshape(steps, *shape), v_final.reshape(shape),
                valid.reshape(shape))
    small = flat.shape[1] <= SMALL_SCAN or flat.device.type != "cpu"  # library scans win when narrow / on GPU
    if small:
        cumulative = th.cumsum(flat, dim=0)  # S[t] = sum_{tau<=t} I[tau]
    else:
        cumulative = flat.clone()
        rows = cumulative.unbind(0)
        for t in range(1, steps):
            rows[t].add_(rows[t - 1])  # S[t] = S[t-1] + I[t]
    counts = th.empty((steps + 1, flat.shape[1]), dtype=flat.dtype, device=flat.device)
    counts[0] = 0
    scaled = cumulative if threshold == 1.0 else cumulative / threshold
    th.floor(scaled, out=counts[1:]).clamp_min_(0)  # floor(S[t] / V_thr), at least 0
    if small:
        counts = th.cummax(counts, dim=0).values  # n[t] = max(0, max_{tau<=t} floor(S[tau]/V_thr))
    else:
        rows = counts.unbind(0)
        for t in range(1, steps + 1):
            th.maximum(rows[t], rows[t - 1], out=rows[t])  # n[t] = max(n[t-1], floor(S[t]/V_thr))
    spikes = th.diff(counts, dim=0)  # s[t] = n[t] - n[t-1]
    # Exact validity check on the result: the identity is the true trajectory iff the membrane
    # before reset, v_pre[t] = S[t] - V_thr n[t-1], stays below 2 V_thr, i.e. iff the identity never
    # asks for two spikes in one step (n[t] - n[t-1] <= 1).
    valid = spikes.amax(dim=0) <= 1
    v_final = cumulative[-1] - threshold * counts[-1]  # V(T) = S(T) - V_thr n(T)
    if not bool(valid.all()):
        bad = ~valid
        loop_counts, loop_v = _if_loop(flat[:, bad], threshold)
        counts[:, bad] = loop_counts
        spikes[:, bad] = th.diff(loop_counts, dim=0)
        v_final[bad] = loop_v
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


def _apply_time_batched(layer: nn.Module, x: th.Tensor) -> th.Tensor:
    """Apply ``layer`` to ``[T, batch, ...]`` as one call over ``[T * batch, ...]``."""
    steps, batch = x.shape[:2]
    out = layer(x.reshape(steps * batch, *x.shape[2:]))
    return out.reshape(steps, batch, *out.shape[1:])


def _readout(readout: str, counts: th.Tensor, v_final: th.Tensor, steps: int, threshold: float) -> th.Tensor:
    if readout == "rate":
        return counts / steps  # r = n(T) / T
    if readout == "robust":
        return counts / steps + v_final / (steps * threshold)  # f = r + V(T) / (T V_thr)
    raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")


def simulate_fast(
    layers: list[nn.Module], x: th.Tensor, steps: int, threshold: float = 1.0, readout: str = "robust", fast: bool = True
) -> IFSimulation:
    """Fast simulation: layer by layer, time batched, scans replaced by closed forms where exact.

    :param layers: ``Linear``/``Conv2d`` (each followed by IF neurons) and ``Flatten`` modules
    :param x: analog input ``[batch, ...]`` (constant for all steps)
    :param steps: ``T``
    :param threshold: ``V_thr`` of every neuron
    :param readout: ``"robust"`` or ``"rate"``
    :param fast: ``False`` solves every layer after the first with the per-step loop (for timing)
    """
    counts: dict[int, th.Tensor] = {}
    potentials: dict[int, th.Tensor] = {}
    fast_fraction: dict[int, float] = {}
    spikes: th.Tensor | None = None  # spike train of the previous layer, [T, batch, ...]
    cumulative_last: th.Tensor | None = None
    last = max(i for i, layer in enumerate(layers) if is_synaptic(layer))
    with th.no_grad():
        for index, layer in enumerate(layers):
            if not is_synaptic(layer):
                if spikes is None:
                    x = layer(x)
                else:
                    spikes = _apply_time_batched(layer, spikes)
                continue
            if spikes is None:  # first synaptic layer: constant analog input
                z = layer(x)
                n = first_layer_counts(z, steps, threshold)
                new_spikes = None
                v_final = steps * z - threshold * n[-1]  # V(T) = T z - V_thr n(T)
                fast_fraction[index] = 1.0
                if index == last:
                    cumulative_last = steps * z
            else:
                current = _apply_time_batched(layer, spikes)
                if index == last:
                    cumulative_last = current.sum(dim=0)
                n, new_spikes, v_final, valid = if_dynamics(current, threshold, fast=fast)
                fast_fraction[index] = float(valid.to(th.float32).mean())
            counts[index] = n[-1]
            potentials[index] = v_final
            if index == last:
                spikes = None
            elif new_spikes is None:
                spikes = th.diff(n, dim=0)  # s[t] = n[t] - n[t-1]
            else:
                spikes = new_spikes
    assert cumulative_last is not None
    outputs = _readout(readout, counts[last], potentials[last], steps, threshold)
    return IFSimulation(outputs, counts, potentials, cumulative_last / steps, fast_fraction)


def simulate_reference(
    layers: list[nn.Module], x: th.Tensor, steps: int, threshold: float = 1.0, readout: str = "robust"
) -> IFSimulation:
    """Exact per-step reference: every step runs the whole network once (the textbook loop).

    :param layers: as for :func:`simulate_fast`
    :param x: analog input ``[batch, ...]``
    :param steps: ``T``
    :param threshold: ``V_thr``
    :param readout: ``"robust"`` or ``"rate"``
    """
    counts: dict[int, th.Tensor] = {}
    potentials: dict[int, th.Tensor] = {}
    last = max(i for i, layer in enumerate(layers) if is_synaptic(layer))
    current_sum: th.Tensor | None = None
    with th.no_grad():
        for _ in range(steps):
            h = x
            for index, layer in enumerate(layers):
                h = layer(h)
                if not is_synaptic(layer):
                    continue
                if index == last:
                    current_sum = h.clone() if current_sum is None else current_sum + h
                v = potentials.get(index, th.zeros_like(h)) + h  # v[t] = v[t-1] + I[t]
                spikes = (v >= threshold).to(h.dtype)  # s[t] = [v[t] >= V_thr]
                potentials[index] = v - threshold * spikes  # reset by subtraction
                counts[index] = counts.get(index, th.zeros_like(h)) + spikes
                h = spikes
    assert current_sum is not None
    outputs = _readout(readout, counts[last], potentials[last], steps, threshold)
    return IFSimulation(outputs, counts, potentials, current_sum / steps)

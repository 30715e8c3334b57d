"""Time-to-first-spike (CVTC, beta-free) networks on the chip model: a current-based neuron in discrete time.

A beta-free CVTC layer (Mostafa's Eq. 4, :mod:`sb3_snn.spiking.temporal`) is a leak-free integrate-and-fire
neuron driven by an exponentially decaying synaptic current (``tau_syn = 1``, threshold 1, one spike per
neuron, read out by its time ``z = exp(t)``). The chip runs it as a current-based neuron (a synaptic
current register that decays, and a membrane that integrates it without leak, as Loihi's CUBA
compartment does) on a time grid ``t_k = t_start + k * dt`` (``dt``: ``spec.temporal_dt``, in units of
``tau_syn``). Per step ``k`` and neuron (integers)::

    c = i - decay(i)                                      the charge the current loses over (t_{k-1}, t_k]
    v = saturate(v + c),  i = i - c                       ... flows into the membrane (charge is conserved)
    s = v >= threshold_q and the neuron has not fired     first spike at step k; then refractory
    i = saturate(i + sum of (w_q << shift) over this step's input spikes)

``decay(i) = (i * d_q + 2**(leak_bits-1)) >> leak_bits`` (nearest, half up), but at least one step closer to
0 than ``i``, so a small current still drains instead of stalling where rounding undoes the decay. ``d_q =
round(exp(-dt) * 2**leak_bits)``, and the grid uses the step that ``d_q`` represents exactly, ``dt =
-ln(d_q / 2**leak_bits)`` (reported). One input spike of weight ``w`` hands the membrane exactly ``w`` in the
end, as ``V(z) = sum_C w_i (1 - z_i / z)`` says, and with every input on the grid the membrane at ``t_k``
equals the continuous one (the current keeps its sign between events, so no crossing is missed): the first
step with ``v >= threshold`` is the continuous spike time rounded up to the grid. The remaining errors are
the input spike times rounded to the grid, hidden spike times rounded up (a spike reaches the next layer
in the step it is fired), and integer rounding; the first two shrink with ``dt``.

Input: the board computes the population code (:func:`sb3_snn.backends.encode_population`) and sends
each input neuron's spike at the grid step nearest its time; ``t_start = ln z_min`` is the earliest
time the encoder can produce. The window ends at the output layer's ``z_never`` (the time the float
network reports for a neuron that never fires); an output neuron that has not fired by then reads
``z_never``. Readout: ``Q = q_sign * exp(t)`` of each output spike, with ``t`` its step refined by where
in the step the membrane crossed (:func:`crossing_fraction`, from the overshoot ``v - threshold_q`` and the
step's charge ``c``, which a firing output neuron holds), so the readout does not round the output times
to the grid; the action is ``argmax Q`` (the policy's rule). The host stops an action once its action is
decided (``q_sign = -1``: the first output spike; ``+1``: all but one output have fired); the cost counts
the steps and spikes up to then.

Quantisation per neuron (as :mod:`sb3_snn_nc64c.quantize` does for IF/LIF neurons): the membrane step
``u = threshold / K`` is as fine as the weight width and shift allow but no finer than keeps
``threshold + sum|w|`` in the membrane range (``|V|`` and ``|i|`` never exceed ``sum|w|``, plus the
threshold at a spike); the current register has the membrane's width and step. The weights are rounded
with error feedback in the inputs' usual arrival order (:func:`quantize_temporal`), which keeps the weight
sum of every causal set within half a weight step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sb3_snn.backends import (
    FP32_MAC_PJ,
    BackendReport,
    Deployment,
    ReportSection,
    SpikingDescription,
    UnsupportedNetworkError,
    agreement,
    as_batch,
    describe_network,
    encode_population,
    reference_simulate,
    write_artifact,
)

from sb3_snn_nc64c.energy import EnergyEstimate, energy_rows
from sb3_snn_nc64c.mapping import Mapping
from sb3_snn_nc64c.spec import FORMAT, FORMAT_VERSION, ChipSpec

#: The artifact document's ``network`` entry of a temporal deployment.
NETWORK_KIND = "temporal"
#: The coarsest time step accepted, in units of the synaptic time constant.
MAX_DT = 1.0
#: The encoding and readout a temporal description must have.
ENCODING, READOUT = "population_temporal", "spike_time"


@dataclass(frozen=True)
class TimeGrid:
    """The discrete time of a temporal network on the chip.

    :param dt: the step, in units of ``tau_syn`` (the one ``decay`` represents exactly)
    :param decay: ``d_q``, the current's decay per step as a fraction of ``2**leak_bits``
    :param t_start: time of step 0 (``ln`` of the encoder's earliest spike time)
    :param n_steps: steps in the window (up to the output layer's ``z_never``)
    :param requested_dt: the ``temporal_dt`` asked for
    """

    dt: float
    decay: int
    t_start: float
    n_steps: int
    requested_dt: float

    def z_of(self, steps: np.ndarray) -> np.ndarray:
        """z-domain time of grid steps."""
        return np.exp(self.t_start + np.asarray(steps, dtype=np.float64) * self.dt)


def dt_range(spec: ChipSpec) -> tuple[float, float]:
    """The finest and coarsest ``temporal_dt`` the spec accepts: the finest is the decay ``leak_bits`` can
    still tell from 1 (``d_q = 2**leak_bits - 1``), the coarsest :data:`MAX_DT`.

    :param spec: the chip
    """
    one = 2**spec.leak_bits
    return -math.log((one - 0.5) / one), MAX_DT


def _earliest_input_z(encoding: dict[str, Any]) -> float:
    """The earliest spike time (z) the population code can produce: ``z_high - min(peak drive, clip)``."""
    peak = float(encoding["amplitude"]) / (float(encoding["sigma"]) * math.sqrt(2 * math.pi))
    if encoding.get("clip") is not None:
        peak = min(peak, float(encoding["clip"]))
    return float(encoding["z_high"]) - peak


def _z_never(description: SpikingDescription) -> float:
    """The output layer's sentinel time (``params.z_never``, default ``1 / beta_training``)."""
    neuron = description.layers[-1].neuron
    assert neuron is not None  # check_temporal: every layer has temporal neurons
    value = neuron.params.get("z_never")
    if value is None:
        value = 1.0 / float(neuron.params.get("beta_training") or 1e-3)
    return float(value)


def time_grid(description: SpikingDescription, spec: ChipSpec) -> TimeGrid:
    """The grid ``spec.temporal_dt`` gives the network.

    :param description: a temporal network (checked by :func:`check_temporal`)
    :param spec: the chip (``temporal_dt``, ``leak_bits``)
    :raises ValueError: ``temporal_dt`` outside :func:`dt_range`
    """
    finest, coarsest = dt_range(spec)
    requested = float(spec.temporal_dt)
    if not finest <= requested <= coarsest:
        raise ValueError(
            f"temporal_dt must be in [{finest:.3g}, {coarsest:g}] (units of the synaptic time constant; "
            f"the finest step a {spec.leak_bits}-bit decay can represent), got {requested}"
        )
    one = 2**spec.leak_bits
    decay = min(max(round(math.exp(-requested) * one), 1), one - 1)
    dt = -math.log(decay / one)
    t_start = math.log(_earliest_input_z(description.encoding))
    t_end = math.log(_z_never(description))
    t_last_input = math.log(float(description.encoding["z_high"]))
    if t_end <= t_last_input:
        raise UnsupportedNetworkError(
            description.layers[-1].name,
            f"z_never {math.exp(t_end):g}",
            "the output window must end after the last input spike (z_high)",
            spec.name,
        )
    return TimeGrid(dt, decay, t_start, math.ceil((t_end - t_start) / dt) + 1, requested)


def check_temporal(description: SpikingDescription, spec: ChipSpec) -> None:
    """Raise unless the chip model can run the temporal network: every layer a bias-free linear layer of
    beta-free temporal neurons (``tau_syn = 1``), the population code and the spike-time readout, a spec
    with a synaptic-current compartment and a decay, and a valid ``temporal_dt``.

    :param description: a network with ``description.is_temporal``
    :param spec: the chip
    :raises UnsupportedNetworkError: at the first thing the chip model cannot run (names the layer)
    :raises ValueError: ``temporal_dt`` out of range
    """
    target = spec.name
    first = description.layers[0].name
    if not spec.synaptic_current:
        raise UnsupportedNetworkError(
            first,
            "temporal (time-to-first-spike) neurons",
            "they need a decaying synaptic current and the spec has none (synaptic_current=False)",
            target,
        )
    if spec.leak_bits == 0:
        raise UnsupportedNetworkError(
            first,
            "temporal (time-to-first-spike) neurons",
            "the synaptic current decays and the spec has no decay (leak_bits = 0)",
            target,
        )
    if description.encoding.get("kind") != ENCODING:
        raise UnsupportedNetworkError(
            "network",
            f"the {description.encoding.get('kind')!r} input encoding",
            f"temporal neurons take the {ENCODING!r} input",
            target,
        )
    if description.readout.get("kind") != READOUT:
        raise UnsupportedNetworkError(
            "network",
            f"the {description.readout.get('kind')!r} readout",
            f"temporal neurons are read out by their first spike ({READOUT!r})",
            target,
        )
    for layer in description.layers:
        neuron = layer.neuron
        if layer.kind != "linear" or neuron is None or neuron.model != "temporal":
            raise UnsupportedNetworkError(
                layer.name,
                f"a {layer.kind} layer of {None if neuron is None else neuron.model!r} neurons in a temporal network",
                "every layer of a temporal network is linear with temporal neurons",
                target,
            )
        beta = float(neuron.params.get("beta", 0.0))
        if beta != 0.0:
            raise UnsupportedNetworkError(
                layer.name,
                f"the beta term (beta = {beta:g})",
                "the chip model runs the beta-free neuron (Mostafa's Eq. 4): call "
                "policy.set_inference('mostafa') before spiking_description()",
                target,
            )
        if float(neuron.params.get("tau_syn", 1.0)) != 1.0 or neuron.threshold <= 0:
            raise UnsupportedNetworkError(
                layer.name,
                f"tau_syn {neuron.params.get('tau_syn')} / threshold {neuron.threshold}",
                "times are in units of tau_syn = 1, thresholds > 0",
                target,
            )
        if layer.bias is not None and np.any(np.asarray(layer.bias) != 0):
            raise UnsupportedNetworkError(layer.name, "a bias", "temporal neurons take no bias", target)
    time_grid(description, spec)


@dataclass
class TemporalLayer:
    """One temporal layer in integer form.

    :param name: layer name
    :param input_shape: per-sample input shape
    :param output_shape: per-sample output shape
    :param weight: integer weights ``[out, in]`` (of ``(1 - d) * w``, in steps of ``unit * 2**shift``)
    :param shift: per neuron, the left shift of a weight into the current register
    :param unit: per neuron, the float value of one membrane (and current) step
    :param threshold: per neuron, the threshold in membrane steps
    :param clipped: weights that saturated at the weight width
    """

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray
    shift: np.ndarray
    unit: np.ndarray
    threshold: np.ndarray
    clipped: int = 0

    #: the array fields (saved to ``arrays.npz``; the rest is the JSON header)
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "shift", "unit", "threshold")

    def header(self) -> dict[str, Any]:
        """Everything but the arrays (JSON-compatible)."""
        return {k: v for k, v in vars(self).items() if k not in self.ARRAYS}

    def increments(self) -> np.ndarray:
        """``[in, out]`` integer current increment of one spike of each input (``w_q << shift``)."""
        return (self.weight.astype(np.int64) << self.shift.astype(np.int64)[:, None]).T.copy()


@dataclass
class TemporalNetwork:
    """A temporal network in the spec's integer formats on its time grid.

    :param layers: in execution order
    :param grid: the time grid
    :param spec: the chip
    :param description: the float network
    """

    layers: list[TemporalLayer]
    grid: TimeGrid
    spec: ChipSpec
    description: SpikingDescription


def quantize_temporal(
    description: SpikingDescription, spec: ChipSpec, example_obs: np.ndarray | None = None
) -> TemporalNetwork:
    """Quantise a temporal network: weights, thresholds, the current's decay, the grid.

    Each row's weights are rounded one after the other in the order their inputs usually arrive (mean
    spike step of the float network on the grid for ``example_obs``; input order without it), each rounding
    error carried to the next weight (first-order error feedback). So the sum of the weights of every
    prefix of that order, the ``W_C`` of a causal set that arrives in it, is within half a weight step of
    the float sum: Mostafa's spike time ``N_C / (W_C - 1)`` magnifies an error of ``W_C`` by
    ``1 / (W_C - 1)``, so independent rounding would let it grow with the fan-in.

    :param description: the float network (checked by :func:`check_temporal`)
    :param spec: the chip
    :param example_obs: ``[batch, *input_shape]`` raw observations that give the inputs' usual order
    """
    grid = time_grid(description, spec)
    w_max, top = spec.weight_max, spec.membrane_range[1]
    arrival: dict[str, np.ndarray] = {}
    if example_obs is not None and len(example_obs):
        steps = simulate_temporal_grid(description, spec, example_obs).spike_steps
        names = ["input", *(layer.name for layer in description.layers)]
        for source, layer in zip(names, description.layers, strict=False):
            arrival[layer.name] = np.where(steps[source] >= 0, steps[source], grid.n_steps).mean(axis=0)
    layers = []
    for layer in description.layers:
        assert layer.weight is not None and layer.neuron is not None  # check_temporal
        weight = np.asarray(layer.weight, dtype=np.float64)
        peak = np.abs(weight).max(axis=1)
        peak = np.where(peak > 0, peak, 1.0)
        threshold_float = float(layer.neuron.threshold)
        fine = peak / (w_max * 2.0**spec.weight_shift_bits)  # the finest step the shift allows
        floor = (threshold_float + 1.01 * np.abs(weight).sum(axis=1)) / top  # |v|, |i| <= threshold + sum|w|
        k = np.clip(np.floor(threshold_float / np.maximum(fine, floor) * (1 + 1e-12)), 1, top).astype(np.int64)
        unit = threshold_float / k
        shift = np.clip(np.ceil(np.log2(peak / (w_max * unit)) - 1e-9), 0, spec.weight_shift_bits).astype(np.int64)
        order = np.argsort(arrival.get(layer.name, np.arange(weight.shape[1])), kind="stable")
        raw = _round_with_carry(weight / (unit * 2.0**shift)[:, None], order, w_max)
        clipped = int((np.abs(raw) > w_max).sum())
        w_q = np.clip(raw, -w_max, w_max).astype(np.int64)
        layers.append(TemporalLayer(layer.name, layer.input_shape, layer.output_shape, w_q, shift, unit, k, clipped))
    return TemporalNetwork(layers, grid, spec, description)


def _round_with_carry(scaled: np.ndarray, order: np.ndarray, w_max: int) -> np.ndarray:
    """Round ``scaled [out, in]`` column by column in ``order``, each row's rounding error carried to its next
    column, so every prefix sum in that order is within 0.5 of the float one (unless a weight clips)."""
    rounded = np.empty_like(scaled)
    carry = np.zeros(len(scaled))
    for column in order:
        target = scaled[:, column] + carry
        rounded[:, column] = np.clip(np.round(target), -w_max - 1, w_max + 1)
        carry = target - rounded[:, column]
    return rounded


@dataclass
class TemporalResult:
    """What a run on the time grid produced.

    :param q_values: ``[batch, n_actions]``, ``q_sign * z`` of the output spike steps (``z_never`` where none)
    :param spike_steps: per layer (and ``"input"``), the step of each neuron's spike ``[batch, n]``, -1 for none
    :param decision_step: ``[batch]``, the step at which the action is decided (the host stops there)
    :param saturations: per layer, membrane and current values that hit the membrane range
    """

    q_values: np.ndarray
    spike_steps: dict[str, np.ndarray]
    decision_step: np.ndarray
    saturations: dict[str, int] = field(default_factory=dict)

    @property
    def actions(self) -> np.ndarray:
        """Greedy actions ``[batch]`` (``argmax Q``, the first on a tie)."""
        return self.q_values.argmax(axis=1)


def input_steps(description: SpikingDescription, grid: TimeGrid, obs: np.ndarray) -> np.ndarray:
    """Grid steps ``[batch, n_inputs]`` of the input spikes (the population code's times rounded to the grid).

    :param description: the temporal network
    :param grid: its time grid
    :param obs: ``[batch, *input_shape]`` raw observations
    """
    z = encode_population(description.encoding, np.asarray(obs, dtype=np.float64).reshape(len(obs), -1))
    steps = np.round((np.log(z) - grid.t_start) / grid.dt)
    return np.clip(steps, 0, grid.n_steps - 1).astype(np.int64)


def _run_layer(
    steps_in: np.ndarray,
    increments: np.ndarray,
    threshold: np.ndarray,
    grid: TimeGrid,
    leak_bits: int,
    bounds: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Spike steps ``[batch, out]`` (-1: none) of one layer, where in its step each spike's threshold
    crossing lies (:func:`crossing_fraction`; 1 where there is no spike) and the saturation count.

    ``bounds`` set: integer arithmetic (the decay ``(i * d_q + half) >> leak_bits``, saturation at the
    bounds); ``None``: float64 with the decay ``d_q / 2**leak_bits`` of the same grid and no bounds.
    """
    batch, n_out = len(steps_in), increments.shape[1]
    integer = bounds is not None
    dtype = np.int64 if integer else np.float64
    # int64 or float64 state (typed as Any: numpy's stubs do not follow the dtype chosen at run time)
    current: Any = np.zeros((batch, n_out), dtype=dtype)
    v: Any = np.zeros((batch, n_out), dtype=dtype)
    out = np.full((batch, n_out), -1, dtype=np.int64)
    fraction = np.ones((batch, n_out))
    thresholds = np.broadcast_to(threshold, (batch, n_out))
    rows, cols = np.nonzero(steps_in >= 0)
    at = steps_in[rows, cols]
    order = np.argsort(at, kind="stable")
    rows, cols, at = rows[order], cols[order], at[order]
    starts = np.searchsorted(at, np.arange(grid.n_steps + 1))
    decay = grid.decay / 2.0**leak_bits  # d as a fraction
    saturations = 0
    last_event = int(at[-1]) if len(at) else -1
    for k in range(grid.n_steps):
        if integer:  # the current decays; what it loses flows into the membrane (charge is conserved)
            delta = current - _decay_integer(current, grid.decay, leak_bits)
        else:
            delta = current * (1.0 - decay)
        v += delta
        current -= delta
        if bounds is not None:
            saturations += int(((v < bounds[0]) | (v > bounds[1])).sum())
            np.clip(v, bounds[0], bounds[1], out=v)
        fire = (v >= threshold) & (out < 0)
        if fire.any():
            out[fire] = k
            fraction[fire] = crossing_fraction(v[fire] - thresholds[fire], delta[fire], decay)
        lo, hi = starts[k], starts[k + 1]
        if hi > lo:
            np.add.at(current, rows[lo:hi], increments[cols[lo:hi]])
            if bounds is not None:
                saturations += int(((current < bounds[0]) | (current > bounds[1])).sum())
                np.clip(current, bounds[0], bounds[1], out=current)
        if k >= last_event and bool((out >= 0).all()):
            break  # every neuron has fired and no input is left
    return out, fraction, saturations


def _decay_integer(current: np.ndarray, decay: int, leak_bits: int) -> np.ndarray:
    """``current * decay / 2**leak_bits`` rounded to nearest (half up), but at least one step closer to 0 than
    ``current`` (so a small current still decays to 0 instead of stalling where rounding undoes the decay)."""
    decayed = (current * decay + 2 ** (leak_bits - 1)) >> leak_bits
    return np.where((decayed == current) & (current != 0), current - np.sign(current), decayed)


def crossing_fraction(overshoot: np.ndarray, increment: np.ndarray, decay: float) -> np.ndarray:
    """Where in its step ``(t_{k-1}, t_k]`` the membrane crossed the threshold, as a fraction in ``(0, 1]``.

    Between grid points the current decays as ``exp(-t)``, so the membrane rose by ``increment * (1 - d**s)
    / (1 - d)`` after a fraction ``s`` of the step; the crossing is where that reaches ``increment -
    overshoot`` (``overshoot = v_k - threshold``), exact for inputs on the grid. The host computes it from
    what an output neuron holds when it fires (its membrane overshoot and the step's increment, in membrane
    steps): the readout's sub-step spike time.

    :param overshoot: ``v - threshold`` at the spike step (>= 0)
    :param increment: the current the membrane integrated in that step (> 0 at an upward crossing)
    :param decay: the current's decay per step, ``d``
    """
    increment = np.asarray(increment, dtype=np.float64)
    share = 1.0 - np.asarray(overshoot, dtype=np.float64) / np.where(increment > 0, increment, 1.0)
    share = np.clip(np.where(increment > 0, share, 1.0), 0.0, 1.0)
    return np.clip(np.log1p(-share * (1.0 - decay)) / math.log(decay), 1e-12, 1.0)


def _finish(
    description: SpikingDescription,
    grid: TimeGrid,
    spike_steps: dict[str, np.ndarray],
    fraction: np.ndarray,
    saturations: dict[str, int],
) -> TemporalResult:
    """Q-values (output spike steps refined by their crossing fractions) and the decision step."""
    last = spike_steps[description.layers[-1].name]
    q_sign = float(description.readout.get("q_sign", 1.0))
    z = np.where(last >= 0, grid.z_of(np.maximum(last, 0) - 1.0 + fraction), _z_never(description))
    never = np.where(last >= 0, last, grid.n_steps - 1)
    n = last.shape[1]
    if n == 1:
        decision = np.zeros(len(last), dtype=np.int64)
    elif q_sign < 0:  # the earliest spike wins: decided at the first output spike
        decision = never.min(axis=1)
    else:  # the latest spike wins: decided once all but one output have fired
        decision = np.sort(never, axis=1)[:, n - 2]
    return TemporalResult(q_sign * z, spike_steps, decision, saturations)


def simulate_temporal_integer(network: TemporalNetwork, obs: np.ndarray) -> TemporalResult:
    """Run the quantised network on the chip's time grid in integers.

    :param network: from :func:`quantize_temporal`
    :param obs: ``[batch, *input_shape]`` raw observations
    """
    description, spec, grid = network.description, network.spec, network.grid
    steps = input_steps(description, grid, obs)
    spike_steps, saturations = {"input": steps}, {}
    for layer in network.layers:
        steps, fraction, saturations[layer.name] = _run_layer(
            steps, layer.increments(), layer.threshold[None, :], grid, spec.leak_bits, spec.membrane_range
        )
        spike_steps[layer.name] = steps
    return _finish(description, grid, spike_steps, fraction, saturations)


def simulate_temporal_grid(description: SpikingDescription, spec: ChipSpec, obs: np.ndarray) -> TemporalResult:
    """The float64 re-simulation on the same grid as the chip (same ``dt``, decay and input rounding, float
    weights and thresholds): what the integer simulation computes without quantisation.

    :param description: the temporal network
    :param spec: the chip (``temporal_dt``, ``leak_bits``)
    :param obs: ``[batch, *input_shape]`` raw observations
    """
    check_temporal(description, spec)
    grid = time_grid(description, spec)
    steps = input_steps(description, grid, obs)
    spike_steps = {"input": steps}
    for layer in description.layers:
        assert layer.weight is not None and layer.neuron is not None  # check_temporal
        increments = np.asarray(layer.weight, dtype=np.float64).T.copy()
        steps, fraction, _ = _run_layer(
            steps, increments, np.full((1, increments.shape[1]), float(layer.neuron.threshold)), grid, spec.leak_bits, None
        )
        spike_steps[layer.name] = steps
    return _finish(description, grid, spike_steps, fraction, {})


def estimate_temporal(
    network: TemporalNetwork, mapping: Mapping, result: TemporalResult, action_rate_hz: float
) -> EnergyEstimate:
    """Cost of one action (batch mean), counting up to each action's decision step.

    SynOps: every spike (input spikes included) at or before the decision step, times the fan-out of the
    layer it enters. Neuron updates: every neuron, every step up to the decision (a current-based neuron's
    update decays the current and integrates it, one update). Spike packets: spikes times the cores of
    the receiving layer (:attr:`Mapping.input_coverage`); the output spikes go to the host.

    :param network: the quantised network
    :param mapping: its placement
    :param result: :func:`simulate_temporal_integer` on the observations the estimate is for
    :param action_rate_hz: actions per second, for the power figure
    """
    spec, description = network.spec, network.description
    decision = result.decision_step[:, None]
    run_steps = float((result.decision_step + 1).mean())
    names = ["input", *(layer.name for layer in network.layers)]
    spikes = {
        name: ((result.spike_steps[name] >= 0) & (result.spike_steps[name] <= decision)).sum(axis=1).mean() for name in names
    }
    synops_per_layer: dict[str, float] = {}
    packets = 0.0
    for source, layer in zip(names, network.layers, strict=False):
        synops_per_layer[layer.name] = float(spikes[source]) * layer.output_shape[0]
        packets += float(spikes[source]) * mapping.input_coverage[layer.name]
    packets += float(spikes[names[-1]])
    synops = sum(synops_per_layer.values())
    n_neurons = sum(layer.output_shape[0] for layer in network.layers)
    neuron_updates = n_neurons * run_steps
    pj = {
        "synops": synops * spec.energy_per_synop_pj,
        "input MACs": 0.0,
        "neuron updates": neuron_updates * spec.energy_per_neuron_update_pj,
        "spike routing": packets * spec.energy_per_spike_hop_pj,
    }
    cycles = sum(
        synops_per_layer[layer.name] / run_steps / mapping.plans[layer.name].n_cores + mapping.plans[layer.name].neurons_max
        for layer in network.layers
    )
    step_us = max(spec.min_timestep_us, cycles / (spec.clock_mhz * spec.ops_per_cycle))
    latency_us = run_steps * step_us
    energy_uj = sum(pj.values()) * 1e-6
    ann_macs = sum(int(np.prod(np.asarray(layer.weight).shape)) for layer in description.layers)
    rates = {layer.name: float((result.spike_steps[layer.name] >= 0).mean()) for layer in network.layers}
    return EnergyEstimate(
        synops=synops,
        synops_per_layer=synops_per_layer,
        input_macs=0.0,
        neuron_updates=round(neuron_updates),
        spike_packets=packets,
        energy_uj=energy_uj,
        energy_breakdown_uj={k: v * 1e-6 for k, v in pj.items()},
        latency_us=latency_us,
        action_rate_hz=action_rate_hz,
        power_w=energy_uj * 1e-6 * action_rate_hz + spec.static_power_w,
        max_action_rate_hz=1e6 / latency_us,
        ann_macs=ann_macs,
        ann_energy_uj=ann_macs * FP32_MAC_PJ * 1e-6,
        firing_rates=rates,
    )


class TemporalDeployment(Deployment):
    """A beta-free CVTC network mapped, quantised and simulated on the NC64C model's time grid.

    :param network: the quantised network (it carries the spec, the grid and the float description)
    :param mapping: the core placement
    :param calibration: figures measured at compile time (agreement, decision steps, saturations)
    :param action_rate_hz: the action rate the power figure is for
    :param energy: the cost estimate
    """

    backend_name = "nc64c"

    def __init__(
        self,
        network: TemporalNetwork,
        mapping: Mapping,
        calibration: dict[str, Any],
        action_rate_hz: float,
        energy: EnergyEstimate | None,
    ) -> None:
        super().__init__(network.description)
        self.network, self.mapping, self.calibration = network, mapping, calibration
        self.action_rate_hz, self.energy = action_rate_hz, energy

    @property
    def spec(self) -> ChipSpec:
        """The chip model."""
        return self.network.spec

    def simulate(self, obs: np.ndarray) -> TemporalResult:
        """The integer simulation's full result for one observation (a batch of one) or a batch."""
        return simulate_temporal_integer(self.network, as_batch(obs, self.description.input_shape)[0])

    def _run_batch(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[batch]`` of the integer simulation."""
        return simulate_temporal_integer(self.network, obs).actions

    def report(self) -> BackendReport:
        """Summary, per-core mapping, quantisation, cost estimate (with assumptions) and the spec."""
        spec, net, cal, grid = self.spec, self.network, self.calibration, self.network.grid
        used = self.mapping.cores
        n = cal.get("n_agreement_obs")
        summary = ReportSection(
            "summary",
            ["quantity", "value", "limit / note"],
            [
                ["cores used", len(used), f"{spec.n_cores}"],
                ["neurons", sum(c.neurons for c in used), f"{spec.neurons_per_core} per core"],
                ["synapses (connections)", sum(c.synapses for c in used), ""],
                ["memory (KiB)", sum(c.memory_bits for c in used) / 8192, "crossbar weights + neuron state (current too)"],
                ["weight / membrane bits", f"{spec.weight_bits} / {spec.membrane_bits}", "current register: membrane width"],
                ["neuron", "current-based, no leak, first spike", "synaptic current decays by d_q / 2^leak_bits"],
                ["time step dt (tau_syn)", grid.dt, f"asked {grid.requested_dt:g}; exact for d_q = {grid.decay}"],
                ["steps in the window", grid.n_steps, "input's earliest spike to the output's z_never"],
                ["steps per action (mean)", cal.get("mean_steps"), "up to the step the action is decided"],
                [
                    "agreement with float SNN",
                    cal.get("agreement"),
                    f"greedy actions, {n} held-out obs (not used to compile)" if n else "not measured",
                ],
                ["membrane / current saturations", sum(cal.get("saturations", {}).values()), "values clipped to the range"],
                ["clipped weights", sum(layer.clipped for layer in net.layers), "beyond the weight width"],
            ],
        )
        cores = ReportSection(
            "cores",
            ["core", "layer", "patch", "neurons", "axons", "synapses", "memory KiB"],
            [[c.core, c.layer, c.patch, c.neurons, c.axons, c.synapses, c.memory_bits / 8192] for c in used],
        )
        quant = ReportSection(
            "quantisation",
            ["layer", "model", "threshold_q", "decay_q", "unit", "shift", "max|w_q|"],
            [
                [
                    q.name,
                    "temporal (current-based)",
                    _range(q.threshold),
                    f"{grid.decay}/2^{spec.leak_bits}",
                    _range(q.unit),
                    _range(q.shift),
                    int(np.abs(q.weight).max()),
                ]
                for q in net.layers
            ],
        )
        energy = ReportSection(
            "cost estimate (per action)",
            ["quantity", "value", "unit", "basis"],
            energy_rows(self._energy(), spec.static_power_w),
        )
        spec_table = ReportSection("chip spec", ["parameter", "value", "status", "source"], spec.provenance_rows())
        notes = [
            "a beta-free CVTC network on a time grid: output spike times are rounded up to the grid, input spike "
            "times to the nearest step; the host stops an action once its action is decided",
            "figures marked 'assumption' come from comparable chips (PAICORE, Tianjic, Loihi, TrueNorth), "
            "not from NC64C documentation",
            "energy ignores memory traffic outside the cores and the host CPU/FPGA (which computes the population code)",
        ]
        estimate = self._energy()
        metrics = {
            "synops_per_action": estimate.synops,
            "energy_per_action_uj": estimate.energy_uj,
            "latency_us": estimate.latency_us,
            "power_w": estimate.power_w,
            "cores": len(used),
            "temporal_dt": grid.dt,
        }
        if cal.get("agreement") is not None:
            metrics["agreement"] = float(cal["agreement"])
        return BackendReport(
            "nc64c", describe_network(self.description), [summary, cores, quant, energy, spec_table], notes, metrics
        )

    def _energy(self) -> EnergyEstimate:
        if self.energy is None:
            raise RuntimeError("no activity recorded: compile with example observations")
        return self.energy

    def save(self, path: str | Path) -> Path:
        """Write ``deployment.json`` + ``arrays.npz`` + ``description/`` (no pickle) and return the folder."""
        arrays = {f"{layer.name}.{key}": getattr(layer, key) for layer in self.network.layers for key in layer.ARRAYS}
        document = {
            "backend": "nc64c",
            "network": NETWORK_KIND,
            "spec": self.spec.to_dict(),
            "grid": vars(self.network.grid),
            "layers": [layer.header() for layer in self.network.layers],
            "mapping": self.mapping.to_dict(),
            "calibration": self.calibration,
            "action_rate_hz": self.action_rate_hz,
            "energy": None if self.energy is None else self.energy.to_dict(),
        }
        return write_artifact(
            path, format=FORMAT, format_version=FORMAT_VERSION, document=document, arrays=arrays, description=self.description
        )


def load_temporal(
    document: dict[str, Any], arrays: dict[str, np.ndarray], description: SpikingDescription
) -> TemporalDeployment:
    """The deployment :meth:`TemporalDeployment.save` wrote (``document["network"] == "temporal"``).

    :param document: the artifact's JSON document
    :param arrays: its arrays
    :param description: its spiking description
    """
    spec = ChipSpec.from_dict(document["spec"])
    layers = []
    for header in document["layers"]:
        header = {**header, "input_shape": tuple(header["input_shape"]), "output_shape": tuple(header["output_shape"])}
        values: dict[str, Any] = {key: arrays[f"{header['name']}.{key}"] for key in TemporalLayer.ARRAYS}
        layers.append(TemporalLayer(**header, **values))
    network = TemporalNetwork(layers, TimeGrid(**document["grid"]), spec, description)
    energy = None if document.get("energy") is None else EnergyEstimate(**document["energy"])
    return TemporalDeployment(
        network, Mapping.from_dict(document["mapping"]), document["calibration"], document["action_rate_hz"], energy
    )


def build_temporal(
    description: SpikingDescription,
    spec: ChipSpec,
    mapping: Mapping,
    example_obs: np.ndarray,
    held_out: np.ndarray,
    action_rate_hz: float,
) -> TemporalDeployment:
    """Quantise, simulate and cost a checked, mapped temporal network (what ``NC64CBackend.build`` calls).

    Nothing is calibrated on observations (the input is spike times on the grid, the weights' ranges are
    known), so the agreement with the float network is measured on ``held_out`` and the activity behind
    the cost on every observation given.

    :param description: the network (checked by :func:`check_temporal`)
    :param spec: the chip
    :param mapping: its placement
    :param example_obs: ``[batch, *input_shape]`` observations for the activity
    :param held_out: ``[batch, *input_shape]`` observations to measure the agreement on (may be empty)
    :param action_rate_hz: actions per second, for the power figure
    """
    network = quantize_temporal(description, spec, example_obs)
    for core in mapping.cores:  # a current-based neuron keeps a current register beside its membrane
        core.memory_bits += core.neurons * spec.membrane_bits
    everything = np.concatenate([example_obs, held_out]) if len(held_out) else example_obs
    result = simulate_temporal_integer(network, everything)
    measured = None
    if len(held_out):
        measured = agreement(result.actions[len(example_obs) :], reference_simulate(description, held_out).actions)
    calibration: dict[str, Any] = {
        "n_calibration_obs": 0,
        "n_agreement_obs": len(held_out),
        "agreement": measured,
        "agreement_measured_on": "held-out observations" if len(held_out) else "none",
        "mean_steps": float((result.decision_step + 1).mean()),
        "saturations": result.saturations,
        "temporal_dt": network.grid.dt,
        "warnings": [],
    }
    energy = estimate_temporal(network, mapping, result, action_rate_hz)
    return TemporalDeployment(network, mapping, calibration, action_rate_hz, energy)


def _range(values: np.ndarray) -> str:
    """``"a"`` or ``"[min, max]"`` of an array."""
    low, high = values.min(), values.max()
    fmt = (lambda x: str(int(x))) if np.issubdtype(values.dtype, np.integer) else (lambda x: f"{x:.3g}")
    return fmt(low) if low == high else f"[{fmt(low)}, {fmt(high)}]"

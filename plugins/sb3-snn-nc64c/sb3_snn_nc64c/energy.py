"""Estimate: SynOps, energy per inference, power at an action rate and latency, from simulated activity.

Counts come from the integer simulation of calibration observations (spikes per layer), the SynOps
definition is the project's (:func:`sb3_snn.backends.count_operations`: one spike delivered to one
synapse), and the per-operation energies and timing are the spec's (mostly assumptions). The model::

    E = SynOps * e_synop + input MACs * e_mac + neuron updates * e_neuron + spike packets * e_hop

``e_mac`` prices an analog-input MAC at the widths it actually has (:attr:`ChipSpec.input_mac_energy_pj`:
an ``input_bits x weight_bits`` multiply and a ``membrane_bits`` add, scaled from Horowitz's 45 nm table)
unless the spec sets ``energy_per_input_mac_pj``.
    step time = max(min_timestep, sum over layers of (busiest core's ops) / (clock * ops_per_cycle))
    latency = T * step time,   P(rate) = E * rate + static power

It ignores memory traffic outside the cores, the host/FPGA, and I/O: the printed figures are a model
with stated assumptions, not a measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sb3_snn.backends import CONTEXT_POWER_W, FP32_MAC_PJ, count_operations

from sb3_snn_nc64c.mapping import Mapping
from sb3_snn_nc64c.quantize import QuantizedNetwork



@dataclass
class EnergyEstimate:
    """Per-action cost figures.

    :param synops: synaptic operations per action
    :param synops_per_layer: the same per receiving layer
    :param input_macs: integer MACs of analog inputs per action
    :param neuron_updates: neuron updates per action
    :param spike_packets: spike packets routed per action
    :param energy_uj: total dynamic energy per action (µJ)
    :param energy_breakdown_uj: the same by term
    :param latency_us: time per action (µs)
    :param action_rate_hz: the rate the power figure is for
    :param power_w: power at that rate (W)
    :param max_action_rate_hz: ``1 / latency``
    :param ann_macs: MACs of the dense ANN with the same shape
    :param ann_energy_uj: those MACs at the fp32 energy (Horowitz 2014)
    :param firing_rates: spikes per neuron per step, per layer
    """

    synops: float
    synops_per_layer: dict[str, float]
    input_macs: float
    neuron_updates: int
    spike_packets: float
    energy_uj: float
    energy_breakdown_uj: dict[str, float]
    latency_us: float
    action_rate_hz: float
    power_w: float
    max_action_rate_hz: float
    ann_macs: int
    ann_energy_uj: float
    firing_rates: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def estimate(network: QuantizedNetwork, mapping: Mapping, spike_counts: dict[str, np.ndarray],
             action_rate_hz: float = 50.0) -> EnergyEstimate:
    """Cost of one action, averaged over the batch the spike counts come from.

    :param network: the quantised network
    :param mapping: its placement
    :param spike_counts: per layer, integer-simulation spike counts ``[batch, *output_shape]``
    :param action_rate_hz: actions per second, for the power figure
    """
    description, spec = network.description, network.spec
    steps = description.timesteps
    cost = count_operations(description, spike_counts)
    synaptic = [layer for layer in description.layers if layer.kind != "flatten"]
    neuron_updates = sum(layer.n_neurons for layer in synaptic) * steps
    packets = 0.0
    for layer, following in zip(synaptic, [*synaptic[1:], None], strict=True):
        if layer.name not in spike_counts:
            continue
        spikes = float(spike_counts[layer.name].sum() / len(spike_counts[layer.name]))
        packets += spikes * (mapping.input_coverage[following.name] if following is not None else 1.0)
    pj = {
        "synops": cost.synops * spec.energy_per_synop_pj,
        "input MACs": cost.input_macs * spec.input_mac_energy_pj,
        "neuron updates": neuron_updates * spec.energy_per_neuron_update_pj,
        "spike routing": packets * spec.energy_per_spike_hop_pj,
    }
    cycles = 0.0
    for layer in synaptic:
        plan = mapping.plans[layer.name]
        ops = cost.synops_per_layer.get(layer.name, 0.0) / steps
        if layer.name not in cost.synops_per_layer:  # analog input: dense integer MACs
            ops = cost.input_macs / steps
        cycles += ops / plan.n_cores + plan.neurons_max
    step_us = max(spec.min_timestep_us, cycles / (spec.clock_mhz * spec.ops_per_cycle))
    latency_us = steps * step_us
    energy_uj = sum(pj.values()) * 1e-6
    return EnergyEstimate(
        synops=cost.synops, synops_per_layer=cost.synops_per_layer, input_macs=cost.input_macs,
        neuron_updates=neuron_updates, spike_packets=packets, energy_uj=energy_uj,
        energy_breakdown_uj={k: v * 1e-6 for k, v in pj.items()}, latency_us=latency_us,
        action_rate_hz=action_rate_hz, power_w=energy_uj * 1e-6 * action_rate_hz + spec.static_power_w,
        max_action_rate_hz=1e6 / latency_us, ann_macs=cost.ann_macs, ann_energy_uj=cost.ann_macs * FP32_MAC_PJ * 1e-6,
        firing_rates=cost.firing_rates,
    )


def energy_rows(est: EnergyEstimate, spec_static_w: float) -> list[list[Any]]:
    """``[quantity, value, unit, basis]`` rows for a report, assumptions beside the figures."""
    rows: list[list[Any]] = [
        ["SynOps per action", est.synops, "ops", "simulated spikes x fan-out"],
        ["input MACs per action", est.input_macs, "MACs",
         "analog first layer, every step; priced at the input x weight widths (spec)"],
        ["neuron updates per action", est.neuron_updates, "updates", "neurons x time steps"],
        ["spike packets per action", est.spike_packets, "packets", "spikes x destination cores (mapping)"],
    ]
    for term, value in est.energy_breakdown_uj.items():
        rows.append([f"energy: {term}", value, "µJ", "assumed energy per op (spec)"])
    rows += [
        ["energy per action", est.energy_uj, "µJ", "sum of the above; no memory traffic, no host"],
        ["latency per action", est.latency_us, "µs", "assumed clock, ops/cycle, min time step"],
        ["max action rate", est.max_action_rate_hz, "Hz", "1 / latency"],
        [f"power at {est.action_rate_hz:g} actions/s", est.power_w, "W",
         f"energy x rate + static {spec_static_w:g} W (assumed)"],
        ["ANN MACs (same shape)", est.ann_macs, "MACs", "dense evaluation"],
        ["ANN energy (fp32 MACs)", est.ann_energy_uj, "µJ", f"{FP32_MAC_PJ} pJ/MAC, Horowitz 2014; no memory"],
    ]
    rows += [[f"context: {name}", watts, "W", source] for name, watts, source in CONTEXT_POWER_W]
    return rows

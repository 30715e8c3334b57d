"""A plain float reference simulation of a :class:`SpikingDescription`, step by step.

This is the ground truth every faster or integer simulation (the conversion's fast path, the NC64C
model, a NIR graph) is compared with. It follows the neuron semantics written in
:mod:`sb3_snn.spiking.description` literally; it is not meant to be fast. Time-to-first-spike
(``"temporal"``) networks have no time steps: :func:`simulate` runs them through
:mod:`sb3_snn.spiking.temporal` (exact spike times, one spike per neuron at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch as th
from torch.nn import functional as F

from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.temporal import simulate_temporal

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)


@dataclass
class SimulationResult:
    """What a simulation of a batch of observations produced.

    :param outputs: readout values ``[batch, n_actions]`` (the greedy action is their argmax; the
        Q-values ``q_sign * z_out`` of a temporal network)
    :param spike_counts: per spiking layer name, spike counts over all steps ``[batch, *output_shape]``
        (0 or 1 for temporal neurons, which spike at most once)
    :param final_potential: per layer name, the membrane after the last step ``[batch, *output_shape]``
        (empty for a temporal network, whose neurons are read out by their spike times)
    :param readout: the description's readout (its ``"squash"``, if any, makes :attr:`actions` continuous)
    """

    outputs: np.ndarray
    spike_counts: dict[str, np.ndarray]
    final_potential: dict[str, np.ndarray]
    readout: dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> np.ndarray:
        """The actions: greedy ``[batch]`` (the argmax of :attr:`outputs`) for discrete actions, or
        ``[batch, n_actions]`` for a Box action space (a readout with a ``"squash"``: the outputs squashed
        into ``[low, high]`` by :func:`squash_outputs`)."""
        if self.readout.get("squash") is not None:
            return squash_outputs(self.outputs, self.readout)
        return self.outputs.argmax(axis=1)


#: How a readout with continuous actions maps its outputs into the action space (``readout["squash"]``).
SQUASHES = ("tanh", "clip")


def squash_outputs(outputs: ArrayT, readout: dict[str, Any]) -> ArrayT:
    """Continuous actions from readout values ``[batch, n_actions]``, as the readout's ``"squash"`` says,
    exactly as SB3 maps its policies' outputs into a Box action space:

    - ``"tanh"`` (SAC, TD3, DDPG): ``low + (tanh(u) + 1) / 2 * (high - low)`` (``policy.unscale_action``);
    - ``"clip"`` (PPO, A2C): ``clip(u, low, high)``.

    Works on numpy arrays and torch tensors alike (a spiking policy's ``predict`` and the reference
    simulation call this one function, so they squash the same way).

    :param outputs: readout values, one per action dimension
    :param readout: a description's readout with ``"squash"``, ``"low"`` and ``"high"`` (lists)
    :raises ValueError: an unknown squash (the message lists :data:`SQUASHES`)
    """
    kind = readout.get("squash")
    if isinstance(outputs, th.Tensor):
        low = th.as_tensor(np.asarray(readout["low"], dtype=np.float64), dtype=outputs.dtype, device=outputs.device)
        high = th.as_tensor(np.asarray(readout["high"], dtype=np.float64), dtype=outputs.dtype, device=outputs.device)
        if kind == "tanh":
            return low + (th.tanh(outputs) + 1.0) * 0.5 * (high - low)  # type: ignore[return-value]
        if kind == "clip":
            return th.maximum(th.minimum(outputs, high), low)  # type: ignore[return-value]
    else:
        values = np.asarray(outputs)
        low_np, high_np = (np.asarray(readout[key], dtype=values.dtype) for key in ("low", "high"))
        if kind == "tanh":
            return low_np + (np.tanh(values) + 1.0) * 0.5 * (high_np - low_np)  # type: ignore[return-value]
        if kind == "clip":
            return np.clip(values, low_np, high_np)  # type: ignore[return-value]
    raise ValueError(f"unknown action squash {kind!r} in the readout; expected one of {SQUASHES}")


def layer_current(layer: Layer, x: th.Tensor) -> th.Tensor:
    """The synaptic current a layer produces from its input ``x`` (``[batch, *input_shape]``), bias included."""
    weight = None if layer.weight is None else th.as_tensor(layer.weight, dtype=x.dtype)
    bias = None if layer.bias is None else th.as_tensor(layer.bias, dtype=x.dtype)
    if layer.kind == "flatten":
        return x.flatten(1)
    assert weight is not None  # synaptic layers carry a weight
    if layer.kind == "linear":
        return F.linear(x, weight, bias)
    return F.conv2d(x, weight, bias, stride=layer.stride, padding=layer.padding)


def neuron_step(neuron: NeuronPopulation, v: th.Tensor | None, current: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
    """One time step of a population, as the description's semantics define it.

    :param neuron: the population's parameters
    :param v: membrane before the step (``None``: zero)
    :param current: synaptic input current of this step
    :return: the membrane after the step (reset applied) and the spikes (``None`` for non-spiking neurons)
    """
    v = current if v is None else neuron.decay * v + current  # v[t] = decay * v[t-1] + I[t]
    if neuron.model == "nonspiking":
        return v, None
    spikes = (v >= neuron.threshold).to(v.dtype)
    if neuron.reset == "subtract":
        v = v - neuron.threshold * spikes
    elif neuron.reset == "zero":
        v = th.where(spikes.bool(), th.full_like(v, neuron.reset_value), v)
    return v, spikes


def encode_step(description: SpikingDescription, obs: th.Tensor, step: int) -> th.Tensor:
    """The network's input at ``step`` (0-based) for the description's encoding."""
    kind = description.encoding["kind"]
    if kind == "analog":
        return obs
    if kind == "frames":
        frames = int(description.encoding["n_frames"])
        per_frame = int(description.encoding.get("steps_per_frame", 1))
        axis = int(description.encoding.get("frame_axis", 0))
        index = min(step // per_frame, frames - 1)
        return obs.narrow(axis + 1, index, 1)
    raise NotImplementedError(f"the reference simulation does not run the {kind!r} encoding")


def simulate(description: SpikingDescription, obs: np.ndarray | th.Tensor) -> SimulationResult:
    """Run ``description`` on a batch of observations for ``description.timesteps`` steps.

    :param description: a discrete-time network (IF, LIF, non-spiking neurons), or a temporal one
        (every layer of ``"temporal"`` neurons, run event by event by :mod:`sb3_snn.spiking.temporal`)
    :param obs: ``[batch, *input_shape]`` observations, already preprocessed as the network expects
        (for a temporal network: raw observations, its population encoder is part of the description)
    """
    if description.is_temporal:
        q_values, fired = simulate_temporal(description, np.asarray(obs))
        return SimulationResult(outputs=q_values, spike_counts=fired, final_potential={}, readout=description.readout)
    x_obs = th.as_tensor(np.asarray(obs), dtype=th.float64)
    batch, steps = x_obs.shape[0], description.timesteps
    potentials: dict[str, th.Tensor] = {}
    counts: dict[str, th.Tensor] = {}
    readout_sum: th.Tensor | None = None
    with th.no_grad():
        for step in range(steps):
            x = encode_step(description, x_obs, step)
            for layer in description.layers:
                current = layer_current(layer, x)
                neuron = layer.neuron
                if neuron is None:
                    x = current
                    continue
                v, spikes = neuron_step(neuron, potentials.get(layer.name), current)
                potentials[layer.name] = v
                if spikes is None:
                    x = v
                    continue
                counts[layer.name] = counts.get(layer.name, th.zeros_like(v)) + spikes
                x = spikes
            readout_sum = x.clone() if readout_sum is None else readout_sum + x
    last = description.layers[-1]
    assert readout_sum is not None, "a description runs for at least one time step"
    outputs = readout_values(description, last, readout_sum, potentials.get(last.name), counts.get(last.name), steps)
    return SimulationResult(
        outputs=outputs.reshape(batch, -1).numpy(),
        spike_counts={name: c.numpy() for name, c in counts.items()},
        final_potential={name: v.numpy() for name, v in potentials.items()},
        readout=description.readout,
    )


def readout_values(
    description: SpikingDescription,
    last: Layer,
    summed: th.Tensor,
    final_v: th.Tensor | None,
    last_counts: th.Tensor | None,
    steps: int,
) -> th.Tensor:
    """The output layer's values (Q-values, logits or pre-squash actions) from what a run of ``steps`` time steps
    left: the summed output currents or spikes, the final membrane potentials and spike counts, by the
    description's readout kind (``rate``, ``robust``, ``membrane``, ...).

    :param description: the network's description (its ``readout``)
    :param last: the output layer
    :param summed: output spikes (or currents, for a non-spiking output) summed over the steps ``[batch, n]``
    :param final_v: final membrane potentials of the output layer (``None`` without neurons)
    :param last_counts: spike counts of the output layer (``None`` without neurons)
    :param steps: number of time steps run
    """
    kind = description.readout["kind"]
    scale = float(description.readout.get("scale", 1.0))
    if kind == "rate":
        return scale * summed / steps
    if kind == "robust":
        # f = r + V(T) / (T * V_thr): spike rate plus the leftover potential (conversion paper)
        assert last.neuron is not None and final_v is not None and last_counts is not None
        return scale * (last_counts / steps + final_v / (steps * last.neuron.threshold))
    if kind == "membrane_mean":
        return scale * summed / steps
    if kind == "membrane_last":
        assert final_v is not None
        return scale * final_v
    raise NotImplementedError(f"unknown readout {kind!r}")

"""The reference simulation of time-to-first-spike (``"temporal"``) networks: plain, exact, not fast.

A temporal network (CVTC, Wu et al. 2022, after Mostafa 2017) has no discrete time steps. Every input
neuron spikes once, at a time given by the population encoder, and every neuron of a layer spikes at
most once, at the first time its membrane reaches the threshold. Times are in the z-domain, ``z = exp(t)``
(tau_syn = 1). This module computes those spike times from a :class:`SpikingDescription` alone, in
float64 numpy, one (sample, neuron) pair at a time, following the equations line by line; the batched,
differentiable implementation that training uses is ``sb3_snn.cvtc.layers.cvtc_spike_times``, and
the two agree to float rounding.

The encoder (``description.encoding``, kind ``"population_temporal"``; paper Eq. 14): observation
dimension ``i`` drives ``K = n_points`` input neurons ``k = 0..K-1`` that spike at::

    z[i*K + k] = z_high - min(clip, amplitude * normal_pdf(k - center; gains[i] * (x[i] - offsets[i]), sigma))

A layer (``neuron.params``: ``beta``, ``z_never``; threshold 1): with the causal set ``C`` (the inputs
that arrive before the output spike), ``W_C = sum_C w_i`` and ``N_C = sum_C w_i z_i``, the membrane is
``V(z) = W_C - N_C / z + beta * z`` and the output spike time is::

    z_out = [-(W_C - 1) + sqrt((W_C - 1)^2 + 4 beta N_C)] / (2 beta)      beta > 0 (CVTC Eq. 9)
    z_out = N_C / (W_C - 1), only if W_C > 1, else z_never               beta = 0 (Mostafa Eq. 4)

The readout (``description.readout``, kind ``"spike_time"``) is ``Q = q_sign * z_out`` of the last layer;
the greedy action is ``argmax Q``.
"""

from __future__ import annotations

import math

import numpy as np

from sb3_snn.spiking.description import Layer, SpikingDescription

#: The encoding a temporal description takes its input through.
TEMPORAL_ENCODING = "population_temporal"
#: The readout of a temporal description.
TEMPORAL_READOUT = "spike_time"
#: The paper's beta: ``z_never`` defaults to ``1 / beta`` (the end of the window in which a beta-trained
#: neuron fires from the beta term alone) when a description gives neither ``z_never`` nor a beta.
DEFAULT_BETA = 1e-3


def encode_population(encoding: dict, obs: np.ndarray) -> np.ndarray:
    """Input spike times (z-domain) of a batch of raw observations (Eq. 14).

    :param encoding: a description's ``encoding`` of kind ``"population_temporal"`` (as
        ``PopulationEncoder.describe()`` writes it: ``gains``, ``offsets``, ``n_points``, ``amplitude``,
        ``center``, ``sigma``, ``z_high``, ``clip``)
    :param obs: ``[batch, n_dims]`` raw observations
    :return: ``[batch, n_dims * n_points]``, the ``n_points`` neurons of one dimension contiguous
    """
    if encoding.get("kind") != TEMPORAL_ENCODING:
        raise ValueError(f"expected a {TEMPORAL_ENCODING!r} encoding, got kind {encoding.get('kind')!r}")
    x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
    gains = np.asarray(encoding["gains"], dtype=np.float64)
    offsets = encoding.get("offsets")
    offsets = np.zeros_like(gains) if offsets is None else np.asarray(offsets, dtype=np.float64)
    if x.shape[1] != gains.size:
        raise ValueError(f"observations have {x.shape[1]} dimensions, the encoding has {gains.size} gains")
    n_points = int(encoding["n_points"])
    center = encoding.get("center")
    center = (n_points - 1) / 2 if center is None else float(center)
    sigma, amplitude = float(encoding["sigma"]), float(encoding["amplitude"])
    points = np.arange(n_points, dtype=np.float64) - center  # k - c
    mean = (gains * (x - offsets))[:, :, None]  # g_i (x_i - o_i)
    density = np.exp(-0.5 * ((points - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    drive = amplitude * density  # A * Norm(k - c; mean, sigma)
    if encoding.get("clip") is not None:
        drive = np.minimum(drive, float(encoding["clip"]))
    return (float(encoding["z_high"]) - drive).reshape(len(x), -1)  # Eq. 14


def neuron_spike_time(z: np.ndarray, weight: np.ndarray, beta: float, z_never: float) -> tuple[float, bool]:
    """The output spike time of one neuron (threshold 1) and whether it fires.

    The inputs are taken in arrival order; the causal set is the first prefix after which the membrane
    reaches 1 before the next input arrives (or every input, when it never does before the last one).

    :param z: ``[in]`` input spike times, all > 0
    :param weight: ``[in]`` the neuron's weights
    :param beta: the beta of Eq. 9 (0: Mostafa's Eq. 4)
    :param z_never: the spike time reported for a neuron that never fires (beta = 0 only)
    """
    order = np.argsort(z, kind="stable")
    w_c = n_c = 0.0  # W_C and N_C of the prefix that has arrived
    for index in order:
        z_next = float(z[index])
        # V(z_next) >= 1 with the current prefix causal: W_C - N_C / z + beta z >= 1, times z > 0
        if w_c * z_next - n_c + beta * z_next * z_next >= z_next:
            break
        w_c += float(weight[index])
        n_c += float(weight[index]) * z_next
    if beta > 0:  # V -> W_C + beta z grows without bound: the neuron always fires
        root = math.sqrt(max((w_c - 1) ** 2 + 4 * beta * n_c, 0.0))  # sqrt of Eq. 9's discriminant
        if w_c - 1 >= 0:  # Eq. 9 rationalised, 2 N_C / ((W_C - 1) + root): no cancellation
            return 2 * n_c / max(w_c - 1 + root, np.finfo(np.float64).tiny), True
        return (root - (w_c - 1)) / (2 * beta), True  # Eq. 9
    if w_c > 1:
        return n_c / (w_c - 1), True  # Eq. 4
    return float(z_never), False


def layer_spike_times(layer: Layer, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output spike times ``[batch, out]`` of a temporal layer, and which neurons fired (``[batch, out]``, bool).

    :param layer: a bias-free linear layer of ``"temporal"`` neurons with threshold 1
    :param z: ``[batch, in]`` input spike times
    """
    neuron = layer.neuron
    if layer.kind != "linear" or neuron is None or neuron.model != "temporal":
        raise ValueError(f"layer {layer.name!r}: the temporal simulation runs linear layers of temporal neurons, "
                         f"got a {layer.kind} layer of {None if neuron is None else neuron.model!r} neurons")
    if layer.bias is not None and np.any(np.asarray(layer.bias) != 0):
        raise ValueError(f"layer {layer.name!r}: temporal neurons take no bias")
    if neuron.threshold != 1.0 or float(neuron.params.get("tau_syn", 1.0)) != 1.0:
        raise ValueError(f"layer {layer.name!r}: the temporal simulation assumes threshold 1 and tau_syn 1, got "
                         f"{neuron.threshold} and {neuron.params.get('tau_syn')}")
    beta = float(neuron.params.get("beta", 0.0))
    z_never = neuron.params.get("z_never")
    if z_never is None:  # 1 / (the beta the layer was trained with), as CVTCLinear defaults it
        trained = float(neuron.params.get("beta_training") or beta or DEFAULT_BETA)
        z_never = 1.0 / trained
    weight = np.asarray(layer.weight, dtype=np.float64)
    out = np.empty((len(z), weight.shape[0]))
    fired = np.empty(out.shape, dtype=bool)
    for sample in range(len(z)):
        for unit in range(weight.shape[0]):
            out[sample, unit], fired[sample, unit] = neuron_spike_time(z[sample], weight[unit], beta, z_never)
    return out, fired


def simulate_temporal(description: SpikingDescription, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Q-values ``[batch, n_actions]`` of a temporal description and each layer's spikes (0 or 1 per neuron).

    :param description: a network whose layers are all temporal (``description.is_temporal``)
    :param obs: ``[batch, *input_shape]`` raw observations (the encoder is part of the description)
    """
    if description.readout.get("kind") != TEMPORAL_READOUT:
        raise ValueError(f"a temporal network is read out by its output spike times ({TEMPORAL_READOUT!r}), "
                         f"got the {description.readout.get('kind')!r} readout")
    z = encode_population(description.encoding, obs)
    spikes: dict[str, np.ndarray] = {}
    for layer in description.layers:
        z, fired = layer_spike_times(layer, z)
        spikes[layer.name] = fired.astype(np.float64)
    return float(description.readout.get("q_sign", 1.0)) * z, spikes

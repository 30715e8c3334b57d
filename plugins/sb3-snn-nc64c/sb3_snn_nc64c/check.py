"""Check: does a network fit the chip? Runs before anything is mapped, quantised or simulated.

Every failure raises :class:`~sb3_snn.backends.FitError` (a resource runs out: names the layer, the
resource and the limit) or :class:`~sb3_snn.backends.UnsupportedNetworkError` (a neuron model, reset
or encoding the chip model cannot run: names the layer and the reason).
"""

from __future__ import annotations

from sb3_snn.backends import FitError, SpikingDescription, UnsupportedNetworkError

from sb3_snn_nc64c.mapping import plan_layer
from sb3_snn_nc64c.spec import ChipSpec

ENCODINGS = ("analog", "frames")
READOUTS = ("rate", "robust", "membrane_mean", "membrane_last")


def check_fit(description: SpikingDescription, spec: ChipSpec) -> int:
    """Raise on the first thing that does not fit; return the number of cores the network needs.

    :param description: the network
    :param spec: the chip
    """
    target = spec.name
    if description.is_temporal:  # no time steps at all: say so before anything about the encoding or readout
        layer = next(layer for layer in description.layers if layer.neuron is not None and layer.neuron.model == "temporal")
        raise UnsupportedNetworkError(
            layer.name, "temporal (time-to-first-spike) neurons",
            "the chip model runs discrete-time IF/LIF neurons; a CVTC policy's exact spike times need a "
            "continuous-time neuron (use its beta-free discrete mode, or another backend)", target)
    kind = description.encoding.get("kind")
    if kind not in ENCODINGS:
        raise UnsupportedNetworkError("network", f"the {kind!r} input encoding",
                                      f"the chip model runs discrete-time inputs ({', '.join(ENCODINGS)})", target)
    readout = description.readout.get("kind")
    if readout not in READOUTS:
        raise UnsupportedNetworkError("network", f"the {readout!r} readout", f"supported: {', '.join(READOUTS)}", target)
    cores = 0
    for index, layer in enumerate(description.layers):
        if layer.kind == "flatten":
            continue
        neuron = layer.neuron
        if neuron is None:
            raise UnsupportedNetworkError(layer.name, "a synaptic layer without neurons",
                                          "every linear/conv layer drives a neuron population on the chip", target)
        if neuron.model == "nonspiking" and index != len(description.layers) - 1:
            raise UnsupportedNetworkError(layer.name, "a non-spiking hidden layer",
                                          "only the last layer may integrate without firing (it is read out)", target)
        if neuron.model in ("IF", "LIF") and neuron.reset not in spec.reset_modes:
            raise UnsupportedNetworkError(layer.name, f"reset {neuron.reset!r}",
                                          f"the spec supports {', '.join(spec.reset_modes)}", target)
        if neuron.decay != 1.0 and not 0.0 < neuron.decay < 1.0:
            raise UnsupportedNetworkError(layer.name, f"decay {neuron.decay}", "decay must lie in (0, 1]", target)
        if neuron.decay != 1.0 and spec.leak_bits == 0:
            raise UnsupportedNetworkError(layer.name, f"leaky neurons (decay {neuron.decay})",
                                          "the spec has no leak (leak_bits = 0)", target)
        if neuron.model != "nonspiking" and neuron.threshold <= 0:
            raise UnsupportedNetworkError(layer.name, f"threshold {neuron.threshold}", "thresholds must be positive", target)
        cores += plan_layer(layer, spec).n_cores
        if cores > spec.n_cores:
            raise FitError(layer.name, "cores", f"{cores} up to this layer", spec.n_cores, target,
                           "use a smaller network or a spec with more/larger cores")
    return cores

"""Check: does a network fit the chip? Runs before anything is mapped, quantised or simulated.

A neuron model, reset or encoding the chip model cannot run raises
:class:`~sb3_snn.backends.UnsupportedNetworkError` (names the layer and the reason) at the first such
layer. Resources are checked for the whole network at once (:func:`fit_report`): a
:class:`~sb3_snn.backends.FitError` names the first layer no core can hold (or, when every layer can be
mapped, the core total) and its message lists every layer's cores and every layer that cannot be
mapped, so one run says everything a network needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sb3_snn.backends import FitError, SpikingDescription, UnsupportedNetworkError

from sb3_snn_nc64c.mapping import min_fan_in, plan_layer
from sb3_snn_nc64c.spec import ChipSpec
from sb3_snn_nc64c.temporal import check_temporal

ENCODINGS = ("analog", "frames")
READOUTS = ("rate", "robust", "membrane_mean", "membrane_last")


@dataclass
class Unmappable:
    """A layer no core can hold: one of its neurons needs more inputs than a core has axons.

    :param required: the axons one core of the layer needs at least
    :param limit: the axons a core has
    :param reason: why the layer needs that many
    """

    required: int
    limit: int
    reason: str
    resource: str = "fan-in (axons per core)"


@dataclass
class FitReport:
    """The whole network's need on a chip.

    :param layers: per synaptic layer, in execution order, the cores it needs or why no core can hold it
    :param limit: the chip's cores
    """

    layers: dict[str, int | Unmappable]
    limit: int

    @property
    def cores(self) -> dict[str, int]:
        """Per layer that can be mapped, its cores."""
        return {name: need for name, need in self.layers.items() if isinstance(need, int)}

    @property
    def unmappable(self) -> dict[str, Unmappable]:
        """Per layer that no core can hold, why."""
        return {name: need for name, need in self.layers.items() if isinstance(need, Unmappable)}

    @property
    def total_cores(self) -> int:
        """Cores the layers that can be mapped need together."""
        return sum(self.cores.values())

    @property
    def fits(self) -> bool:
        """Every layer can be mapped and all of them fit in the chip's cores."""
        return not self.unmappable and self.total_cores <= self.limit

    def summary(self) -> str:
        """One line: every layer's cores or why it cannot be mapped, and the core total against the limit."""
        parts = [f"{name} {need}" if isinstance(need, int)
                 else f"{name} cannot be mapped ({need.required} inputs > {need.limit} axons per core)"
                 for name, need in self.layers.items()]
        which = "the layers that can be mapped need" if self.unmappable else "the network needs"
        total = self.total_cores
        return (f"cores per layer: {', '.join(parts)}; {which} {total} core{'' if total == 1 else 's'}, "
                f"the chip has {self.limit}")


def fit_report(description: SpikingDescription, spec: ChipSpec) -> FitReport:
    """Every synaptic layer's cores (:func:`~sb3_snn_nc64c.mapping.plan_layer`), or why no core can hold it.

    Checks resources only (:func:`check_fit` also checks neuron models, resets and encodings).

    :param description: the network
    :param spec: the chip
    """
    layers: dict[str, int | Unmappable] = {}
    for layer in description.layers:
        if layer.kind == "flatten":
            continue
        needed, reason = min_fan_in(layer)
        if needed > spec.axons_per_core:
            layers[layer.name] = Unmappable(needed, spec.axons_per_core, reason)
        else:
            layers[layer.name] = plan_layer(layer, spec).n_cores
    return FitReport(layers, spec.n_cores)


def check_fit(description: SpikingDescription, spec: ChipSpec) -> int:
    """Raise if the chip cannot run or hold the network; return the number of cores it needs.

    :param description: the network
    :param spec: the chip
    :raises UnsupportedNetworkError: at the first layer with a neuron model, reset or decay the chip
        cannot run (or an unsupported encoding / readout); a temporal network is checked by
        :func:`sb3_snn_nc64c.temporal.check_temporal` (beta-free CVTC neurons on a time grid)
    :raises FitError: some layer cannot be mapped (the error names the first; the message lists all) or
        the layers need more cores than the chip has (``layer == "network"``); the message gives every
        layer's cores (:meth:`FitReport.summary`)
    """
    target = spec.name
    if description.is_temporal:  # beta-free CVTC neurons on a time grid (sb3_snn_nc64c.temporal)
        check_temporal(description, spec)
        return _check_resources(description, spec)
    kind = description.encoding.get("kind")
    if kind not in ENCODINGS:
        raise UnsupportedNetworkError("network", f"the {kind!r} input encoding",
                                      f"the chip model runs discrete-time inputs ({', '.join(ENCODINGS)})", target)
    readout = description.readout.get("kind")
    if readout not in READOUTS:
        raise UnsupportedNetworkError("network", f"the {readout!r} readout", f"supported: {', '.join(READOUTS)}", target)
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
    return _check_resources(description, spec)


def _check_resources(description: SpikingDescription, spec: ChipSpec) -> int:
    """Raise :class:`FitError` unless every layer can be mapped and all fit in the chip's cores; return the cores."""
    target = spec.name
    report = fit_report(description, spec)
    if report.unmappable:
        name, first = next(iter(report.unmappable.items()))
        raise FitError(name, first.resource, first.required, first.limit, target, f"{first.reason}; {report.summary()}")
    if report.total_cores > spec.n_cores:
        raise FitError("network", "cores", report.total_cores, spec.n_cores, target,
                       f"{report.summary()}; use a smaller network or a spec with more/larger cores")
    return report.total_cores

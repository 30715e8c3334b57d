"""Build: the ``nc64c`` backend (check -> map -> quantise -> simulate -> estimate) and its artifact."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends import (
    Backend,
    BackendReport,
    Deployment,
    ReportSection,
    SpikingDescription,
    agreement,
    describe_network,
    read_artifact,
    reference_simulate,
    write_artifact,
)

from sb3_snn_nc64c.check import check_fit
from sb3_snn_nc64c.energy import EnergyEstimate, energy_rows, estimate
from sb3_snn_nc64c.mapping import Mapping, map_network
from sb3_snn_nc64c.quantize import QuantizedLayer, QuantizedNetwork, quantize_network
from sb3_snn_nc64c.simulate import IntegerResult, simulate_integer
from sb3_snn_nc64c.spec import ChipSpec

FORMAT = "sb3-snn/nc64c-deployment"
FORMAT_VERSION = 1
#: Actions per second of the power figure when ``compile`` is not given ``action_rate_hz``.
DEFAULT_ACTION_RATE_HZ = 50.0


class NC64CDeployment(Deployment):
    """A network mapped, quantised and simulated on the NC64C model.

    :param network: the quantised network (it carries the spec and the float description)
    :param mapping: the core placement
    :param calibration: activity figures measured at compile time (agreement, spikes, saturations)
    :param action_rate_hz: the action rate the power figure is for
    :param energy: the cost estimate (recomputed if ``None``)
    """

    backend_name = "nc64c"

    def __init__(self, network: QuantizedNetwork, mapping: Mapping, calibration: dict[str, Any],
                 action_rate_hz: float = DEFAULT_ACTION_RATE_HZ, energy: EnergyEstimate | None = None) -> None:
        super().__init__(network.description)
        self.network, self.mapping, self.calibration = network, mapping, calibration
        self.action_rate_hz = action_rate_hz
        self.energy = energy

    @property
    def spec(self) -> ChipSpec:
        """The chip model."""
        return self.network.spec

    def simulate(self, obs: np.ndarray) -> IntegerResult:
        """The integer simulation's full result for ``obs`` (``[batch, *input_shape]``)."""
        return simulate_integer(self.network, obs)

    def run(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions of the integer simulation."""
        return self.simulate(obs).actions

    def report(self) -> BackendReport:
        """Summary, per-core mapping, quantisation, cost estimate (with assumptions) and the spec."""
        spec, net = self.spec, self.network
        cal = self.calibration
        used = self.mapping.cores
        summary = ReportSection("summary", ["quantity", "value", "limit / note"], [
            ["cores used", len(used), f"{spec.n_cores} (fact)"],
            ["neurons", sum(c.neurons for c in used), f"{spec.neurons_per_core} per core (assumption)"],
            ["synapses (connections)", sum(c.synapses for c in used), ""],
            ["memory (KiB)", sum(c.memory_bits for c in used) / 8192, "crossbar weights + neuron state"],
            ["weight / membrane / input bits", f"{spec.weight_bits} / {spec.membrane_bits} / {spec.input_bits}", "assumption"],
            ["time steps per action", self.description.timesteps, ""],
            ["agreement with float SNN", cal.get("agreement"), f"greedy actions, {cal.get('n_obs')} calibration obs"],
            ["membrane saturations", sum(cal.get("saturations", {}).values()), "values clipped to the membrane range"],
            ["clipped weights", sum(layer.clipped for layer in net.layers), "beyond the weight width"],
            ["clipped inputs", cal.get("input_clipped"), "beyond the calibrated input range"],
        ])
        cores = ReportSection("cores", ["core", "layer", "patch", "neurons", "axons", "synapses", "memory KiB"], [
            [c.core, c.layer, c.patch, c.neurons, c.axons, c.synapses, c.memory_bits / 8192] for c in used
        ])
        quant = ReportSection("quantisation", ["layer", "model", "threshold_q", "decay_q", "unit", "shift", "max|w_q|",
                                               "bias"], [
            [q.name, q.model, _range(q.threshold), f"{q.decay}/2^{spec.leak_bits}",
             _range(q.unit), _range(q.shift), int(np.abs(q.weight).max()),
             _range(q.bias)]
            for q in net.layers if q.kind != "flatten"
        ])
        energy = ReportSection("cost estimate (per action)", ["quantity", "value", "unit", "basis"],
                               energy_rows(self._energy(), spec.static_power_w))
        spec_table = ReportSection("chip spec", ["parameter", "value", "status", "source"], spec.provenance_rows())
        notes = [
            "figures marked 'assumption' come from comparable chips (PAICORE, Tianjic, Loihi, TrueNorth), "
            "not from NC64C documentation; 'context' rows are measured figures from the SDN paper, not estimates",
            "energy ignores memory traffic outside the cores and the host CPU/FPGA",
        ]
        estimate = self._energy()
        metrics = {"synops_per_action": estimate.synops, "energy_per_action_uj": estimate.energy_uj,
                   "latency_us": estimate.latency_us, "power_w": estimate.power_w,
                   "agreement": cal.get("agreement"), "cores": len(used)}
        return BackendReport("nc64c", describe_network(self.description), [summary, cores, quant, energy, spec_table],
                             notes, metrics)

    def _energy(self) -> EnergyEstimate:
        if self.energy is None:
            raise RuntimeError("no activity recorded: compile with example observations")
        return self.energy

    def save(self, path: str | Path) -> Path:
        """Write ``deployment.json`` + ``arrays.npz`` + ``description/`` (no pickle) and return the folder."""
        arrays: dict[str, np.ndarray] = {"input_scale": self.network.input_scale}
        for layer in self.network.layers:
            for key in layer.ARRAYS:
                if getattr(layer, key) is not None:
                    arrays[f"{layer.name}.{key}"] = getattr(layer, key)
        document = {
            "backend": "nc64c",
            "spec": self.spec.to_dict(),
            "layers": [layer.header() for layer in self.network.layers],
            "mapping": self.mapping.to_dict(),
            "calibration": self.calibration,
            "action_rate_hz": self.action_rate_hz,
            "energy": None if self.energy is None else self.energy.to_dict(),
        }
        return write_artifact(path, format=FORMAT, format_version=FORMAT_VERSION, document=document,
                              arrays=arrays, description=self.description)


class NC64CBackend(Backend):
    """The ``nc64c`` backend: a parameterised model of the PKU NC64C chip.

    :param spec: the chip model (default: :class:`ChipSpec` defaults, mostly assumptions)
    :param overrides: spec parameters to change, e.g. ``weight_bits=4``
    """

    name = "nc64c"

    def __init__(self, spec: ChipSpec | None = None, **overrides: Any) -> None:
        self.spec = (spec or ChipSpec()).with_overrides(**overrides)

    def build(self, description: SpikingDescription, example_obs: np.ndarray, *, action_rate_hz: float | None = None,
              input_margin: float = 1.0, rounding: str = "error_feedback", **overrides: Any) -> NC64CDeployment:
        """Check fit, map to cores, quantise, simulate ``example_obs`` and estimate cost.

        :param description: the network
        :param example_obs: ``[batch, *input_shape]``: sets the input range and the activity behind the estimates
        :param action_rate_hz: actions per second for the power figure (default :data:`DEFAULT_ACTION_RATE_HZ`)
        :param input_margin: head-room on the observed input range (values beyond it are clipped and counted)
        :param rounding: ``"error_feedback"`` (weights rounded so the membrane error is small on
            ``example_obs``) or ``"nearest"`` (see :mod:`sb3_snn_nc64c.quantize`)
        :param overrides: spec parameters for this compilation only (:class:`ChipSpec` fields)
        :raises FitError: a layer does not fit (names the layer, resource and limit)
        :raises UnsupportedNetworkError: a neuron model / reset / encoding the chip cannot run
        """
        action_rate_hz = DEFAULT_ACTION_RATE_HZ if action_rate_hz is None else float(action_rate_hz)
        spec = self.spec.with_overrides(**overrides)
        example_obs = np.asarray(example_obs, dtype=np.float64)
        if example_obs.shape[1:] != description.input_shape:
            raise ValueError(f"example_obs has shape {example_obs.shape[1:]} per sample, the network expects "
                             f"{description.input_shape}")
        check_fit(description, spec)
        mapping = map_network(description, spec)
        network = quantize_network(description, spec, example_obs, margin=input_margin, rounding=rounding)
        result = simulate_integer(network, example_obs)
        reference = reference_simulate(description, example_obs)
        calibration = {
            "n_obs": int(len(example_obs)),
            "agreement": agreement(result.actions, reference.actions),
            "saturations": result.saturations,
            "input_clipped": result.input_clipped,
        }
        energy = estimate(network, mapping, result.spike_counts, action_rate_hz)
        return NC64CDeployment(network, mapping, calibration, action_rate_hz, energy)

    def compile_options(self) -> list[str]:
        """``input_margin``, ``rounding`` and every :class:`ChipSpec` parameter (for this compilation only)."""
        return sorted({"input_margin", "rounding", *(f.name for f in fields(ChipSpec))})

    def load_deployment(self, path: str | Path) -> NC64CDeployment:
        """Read an artifact written by :meth:`NC64CDeployment.save`; refuses a tampered or corrupted one."""
        document, arrays, description = read_artifact(path, format=FORMAT, format_version=FORMAT_VERSION)
        spec = ChipSpec.from_dict(document["spec"])
        layers = []
        for header in document["layers"]:
            header = {**header, "input_shape": tuple(header["input_shape"]), "output_shape": tuple(header["output_shape"]),
                      "stride": tuple(header["stride"]), "padding": tuple(header["padding"])}
            values = {key: arrays.get(f"{header['name']}.{key}") for key in QuantizedLayer.ARRAYS}
            layers.append(QuantizedLayer(**header, **values))
        network = QuantizedNetwork(layers, arrays["input_scale"], spec, description)
        energy = None if document.get("energy") is None else EnergyEstimate(**document["energy"])
        return NC64CDeployment(network, Mapping.from_dict(document["mapping"]), document["calibration"],
                               document["action_rate_hz"], energy)



def _range(values: np.ndarray | None) -> str:
    """``"a"`` or ``"[min, max]"`` of an array, ``"-"`` for ``None``."""
    if values is None:
        return "-"
    low, high = values.min(), values.max()
    fmt = (lambda x: str(int(x))) if np.issubdtype(values.dtype, np.integer) else (lambda x: f"{x:.3g}")
    return fmt(low) if low == high else f"[{fmt(low)}, {fmt(high)}]"

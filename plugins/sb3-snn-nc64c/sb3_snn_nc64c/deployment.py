"""Build: the ``nc64c`` backend (check -> map -> quantise -> simulate -> estimate) and its artifact."""

from __future__ import annotations

import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends import (
    as_batch,
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
from sb3_snn_nc64c.quantize import QuantizedLayer, QuantizedNetwork, calibrate_input_from_bound, quantize_network
from sb3_snn_nc64c.simulate import IntegerResult, simulate_integer
from sb3_snn_nc64c.spec import FORMAT, FORMAT_VERSION, ChipSpec
from sb3_snn_nc64c.temporal import NETWORK_KIND, TemporalDeployment, build_temporal, load_temporal

#: Actions per second of the power figure when ``compile`` is not given ``action_rate_hz``.
DEFAULT_ACTION_RATE_HZ = 50.0
#: Fewest calibration observations behind a trustworthy input range and rounding statistics. On six
#: trained CartPole DQNs (T = 200, consecutive states of epsilon-greedy episodes) 64 calibration states
#: gave 88-100 % agreement on held-out states, 256 gave 95-100 % and 1000 gave 99.4-100 % (docs/hardware.md);
#: 800 is what 1000 example observations leave after the default hold-out.
MIN_CALIBRATION_OBS = 800
#: Default fraction of ``example_obs`` (the last ones) held out to measure the report's agreement.
DEFAULT_HOLDOUT = 0.2
#: Default head-room on the calibrated input range: held-out CartPole states exceed the calibration
#: states' largest value by up to 30 %, and clipping them costs 1-2 % agreement (docs/hardware.md).
DEFAULT_INPUT_MARGIN = 1.5
#: Box actions: the report's agreement counts an observation as agreeing when every action dimension is
#: within this fraction of the action range (``high - low``) of the float SNN's action.
ACTION_TOLERANCE = 0.05


def action_errors(actions: np.ndarray, reference: np.ndarray, readout: dict[str, Any]) -> np.ndarray:
    """Box actions: ``|a - a_ref| / (high - low)`` per observation and action dimension, ``[batch, n_actions]``.

    :param actions: ``[batch, ...]`` actions (any trailing shape with ``n_actions`` elements)
    :param reference: the float SNN's actions, same shape
    :param readout: the description's readout (its ``"low"`` and ``"high"`` give the range)
    """
    span = (np.asarray(readout["high"], dtype=np.float64) - np.asarray(readout["low"], dtype=np.float64)).reshape(-1)
    a = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    return np.abs(a - b) / span


def _agreement_figures(description: SpikingDescription, actions: np.ndarray,
                       reference: np.ndarray) -> dict[str, float | None]:
    """``agreement`` (discrete: equal greedy actions; Box: every dimension within :data:`ACTION_TOLERANCE`
    of the range) and, for Box actions, the mean and largest ``|action error|`` relative to the range."""
    if not description.is_continuous:
        return {"agreement": agreement(actions, reference)}
    errors = action_errors(actions, reference, description.readout)
    return {"agreement": float((errors.max(axis=1) <= ACTION_TOLERANCE).mean()),
            "action_error": float(errors.mean()), "action_error_max": float(errors.max())}


class CalibrationWarning(UserWarning):
    """``compile`` got too few observations to calibrate on: the deployment may disagree with the float SNN."""


def known_input_bound(description: SpikingDescription) -> np.ndarray | None:
    """The bound on ``|x|`` of the first layer's inputs that the policy itself knows, or ``None``.

    - ``metadata["input_bound"]``: a scalar or one value per input feature (linear) / channel (conv);
    - image pixels divided by 255 (``metadata["input_scale"] == 1/255``, as an SDN policy records for an
      image observation space): 1.0.

    A converted policy's ``metadata["preprocessing"]`` is not used: it mentions ``images / 255`` whenever
    SB3's ``normalize_images`` flag is set, which is also the case for vector observations.

    :param description: the network
    """
    metadata = description.metadata or {}
    if metadata.get("input_bound") is not None:
        return np.asarray(metadata["input_bound"], dtype=np.float64)
    scale = metadata.get("input_scale")
    if scale is not None and np.isclose(float(scale), 1.0 / 255.0):
        return np.asarray(1.0)
    return None


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
        """The integer simulation's full result for ``obs``: one observation (a batch of one) or a batch."""
        return simulate_integer(self.network, as_batch(obs, self.description.input_shape)[0])

    def _run_batch(self, obs: np.ndarray) -> np.ndarray:
        """Actions of the integer simulation: greedy ``[batch]``, or squashed ``[batch, n_actions]`` for a Box."""
        return simulate_integer(self.network, obs).actions

    def report(self) -> BackendReport:
        """Summary, per-core mapping, quantisation, cost estimate (with assumptions) and the spec."""
        spec, net = self.spec, self.network
        cal = self.calibration
        used = self.mapping.cores
        summary = ReportSection("summary", ["quantity", "value", "limit / note"], [
            ["cores used", len(used), f"{spec.n_cores} ({spec.provenance()['n_cores']['label']})"],
            ["neurons", sum(c.neurons for c in used), f"{spec.neurons_per_core} per core (assumption)"],
            ["synapses (connections)", sum(c.synapses for c in used), ""],
            ["memory (KiB)", sum(c.memory_bits for c in used) / 8192, "crossbar weights + neuron state"],
            ["weight / membrane / input bits", f"{spec.weight_bits} / {spec.membrane_bits} / {spec.input_bits}", "assumption"],
            ["time steps per action", self.description.timesteps, ""],
            ["calibration observations", cal.get("n_calibration_obs", cal.get("n_obs")), cal.get("input_range", "")],
            ["agreement with float SNN", cal.get("agreement"), _agreement_note(cal)],
            *([["mean |action error| / action range", cal["action_error"],
                f"largest {cal.get('action_error_max', float('nan')):.3g}; same held-out obs"]]
              if cal.get("action_error") is not None else []),
            ["membrane saturations", sum(cal.get("saturations", {}).values()), "values clipped to the membrane range"],
            ["saturations that change no spike", sum(cal.get("harmless_saturations", {}).values()),
             "constant-input layer, below its floor or above while firing every step"],
            ["clipped weights", sum(layer.clipped for layer in net.layers), "beyond the weight width"],
            ["clipped inputs", cal.get("input_clipped"), "beyond the calibrated input range"],
        ])
        cores = ReportSection("cores", ["core", "layer", "patch", "neurons", "axons", "synapses", "memory KiB"], [
            [c.core, c.layer, c.patch, c.neurons, c.axons, c.synapses, c.memory_bits / 8192] for c in used
        ])
        quant = ReportSection("quantisation", ["layer", "model", "threshold_q", "decay_q", "unit", "shift", "max|w_q|",
                                               "bias"], [
            [q.name, q.model, _range(q.threshold), f"{q.decay}/2^{spec.leak_bits}",
             _range(q.unit), _range(q.shift), _max_abs(q.weight),
             _range(q.bias)]
            for q in net.layers if q.kind != "flatten"
        ])
        energy = ReportSection("cost estimate (per action)", ["quantity", "value", "unit", "basis"],
                               energy_rows(self._energy(), spec.static_power_w))
        spec_table = ReportSection("chip spec", ["parameter", "value", "status", "source"], spec.provenance_rows())
        notes = [
            "'inference' is read from the chip's name; figures marked 'assumption' come from comparable chips "
            "(PAICORE, Tianjic, Loihi, TrueNorth) or are modelling choices, "
            "not from NC64C documentation; 'context' rows are measured figures from the SDN paper, not estimates",
            "energy ignores memory traffic outside the cores and the host CPU/FPGA",
            *cal.get("warnings", []),
        ]
        estimate = self._energy()
        metrics = {"synops_per_action": estimate.synops, "energy_per_action_uj": estimate.energy_uj,
                   "latency_us": estimate.latency_us, "power_w": estimate.power_w, "cores": len(used)}
        if cal.get("agreement") is not None:  # a metric is present only where it was measured
            metrics["agreement"] = float(cal["agreement"])
        if cal.get("action_error") is not None:
            metrics["action_error"] = float(cal["action_error"])
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
              eval_obs: np.ndarray | None = None, holdout: float = DEFAULT_HOLDOUT,
              input_margin: float = DEFAULT_INPUT_MARGIN, rounding: str = "error_feedback",
              **overrides: Any) -> NC64CDeployment | TemporalDeployment:
        """Check fit, map to cores, quantise on calibration observations, measure agreement on held-out ones.

        A temporal (beta-free CVTC) network is built by :func:`sb3_snn_nc64c.temporal.build_temporal` on the
        time grid ``temporal_dt`` (a :class:`ChipSpec` field, so also an override here); it calibrates nothing.

        Calibration (the input range and the error feedback's statistics) uses ``example_obs``, except
        the last ``holdout`` fraction of it when no ``eval_obs`` is given. The input range is the bound
        the description records (:func:`known_input_bound`) where there is one, else the calibration
        observations' largest ``|x|`` times ``input_margin``. With fewer than
        :data:`MIN_CALIBRATION_OBS` calibration observations a :class:`CalibrationWarning` says so.
        The report's agreement with the float SNN is measured on observations not used to calibrate
        (``eval_obs``, or the held-out part of ``example_obs``) and says how many; the activity behind
        the cost estimate is measured on all of them.

        :param description: the network
        :param example_obs: ``[batch, *input_shape]`` (or one observation): calibration and activity
        :param action_rate_hz: actions per second for the power figure (default :data:`DEFAULT_ACTION_RATE_HZ`)
        :param eval_obs: ``[batch, *input_shape]`` observations to measure the agreement on (then all of
            ``example_obs`` calibrates)
        :param holdout: without ``eval_obs``, the fraction of ``example_obs`` (its last observations) held
            out of calibration to measure the agreement on, in ``[0, 1)``
        :param input_margin: head-room on the observed input range (values beyond it are clipped and
            counted); unused where the description records an input bound
        :param rounding: ``"error_feedback"`` (weights rounded so the membrane error is small on the
            calibration observations) or ``"nearest"`` (see :mod:`sb3_snn_nc64c.quantize`)
        :param overrides: spec parameters for this compilation only (:class:`ChipSpec` fields)
        :raises FitError: a layer no core can hold, or more cores than the chip has (names the layer or
            ``"network"``, the resource and the limit, and lists every layer's need)
        :raises UnsupportedNetworkError: a neuron model / reset / encoding the chip cannot run
        :raises ValueError: an observation shape or ``holdout`` / ``input_margin`` out of range
        """
        action_rate_hz = DEFAULT_ACTION_RATE_HZ if action_rate_hz is None else float(action_rate_hz)
        spec = self.spec.with_overrides(**overrides)
        if not 0.0 <= float(holdout) < 1.0:
            raise ValueError(f"holdout must be in [0, 1) (a fraction of example_obs), got {holdout}")
        if not float(input_margin) >= 1.0:
            raise ValueError(f"input_margin must be >= 1 (head-room on the observed input range), got {input_margin}")
        try:
            example_obs = as_batch(example_obs, description.input_shape)[0]
            eval_batch = None if eval_obs is None else as_batch(eval_obs, description.input_shape)[0]
        except ValueError as exc:
            raise ValueError(f"compile: {exc}") from exc
        check_fit(description, spec)
        mapping = map_network(description, spec)
        if eval_batch is not None:
            calibration_obs, held_out = example_obs, eval_batch
        else:
            n_held = int(np.floor(len(example_obs) * float(holdout)))
            cut = len(example_obs) - n_held
            calibration_obs, held_out = example_obs[:cut], example_obs[cut:]
        if description.is_temporal:  # a beta-free CVTC network on the time grid: nothing to calibrate
            return build_temporal(description, spec, mapping, calibration_obs, held_out, action_rate_hz)
        bound = known_input_bound(description)
        warnings_text = []
        if len(calibration_obs) < MIN_CALIBRATION_OBS:
            affected = "the rounding statistics" if bound is not None else "the input range and the rounding statistics"
            warnings_text.append(
                f"nc64c calibration: {len(calibration_obs)} observation(s) calibrate {affected}, at least "
                f"{MIN_CALIBRATION_OBS} are needed (give more example_obs"
                + ("" if bound is not None else ", or a policy whose description records metadata['input_bound']")
                + "); the deployment may disagree with the float SNN on other observations")
        if len(held_out) == 0:
            warnings_text.append(
                "nc64c calibration: no observation is left to measure the agreement with the float SNN on "
                "(give eval_obs, or more example_obs with holdout > 0)")
        for text in warnings_text:
            warnings.warn(text, CalibrationWarning, stacklevel=3)
        input_scale = None
        if bound is not None:
            input_scale = calibrate_input_from_bound(description, bound, spec)
        network = quantize_network(description, spec, calibration_obs, margin=input_margin, rounding=rounding,
                                   input_scale=input_scale)
        everything = np.concatenate([calibration_obs, held_out]) if len(held_out) else calibration_obs
        result = simulate_integer(network, everything)
        measured: dict[str, float | None] = {"agreement": None}
        if len(held_out):
            measured = _agreement_figures(description, result.actions[len(calibration_obs):],
                                          reference_simulate(description, held_out).actions)
        calibration = {
            "n_calibration_obs": len(calibration_obs),
            "n_agreement_obs": len(held_out),
            **measured,
            "agreement_measured_on": ("eval_obs" if eval_batch is not None else "held-out example_obs")
            if len(held_out) else "none",
            "input_range": "bound recorded by the policy" if bound is not None
            else f"calibration max|x| x {float(input_margin):g}",
            "saturations": result.saturations,
            "harmless_saturations": result.harmless_saturations,
            "input_clipped": result.input_clipped,
            "warnings": warnings_text,
        }
        energy = estimate(network, mapping, result.spike_counts, action_rate_hz)
        return NC64CDeployment(network, mapping, calibration, action_rate_hz, energy)

    def compile_options(self) -> list[str]:
        """``eval_obs``, ``holdout``, ``input_margin``, ``rounding`` and every :class:`ChipSpec` parameter."""
        return sorted({"eval_obs", "holdout", "input_margin", "rounding", *(f.name for f in fields(ChipSpec))})

    def load_deployment(self, path: str | Path) -> NC64CDeployment | TemporalDeployment:
        """Read an artifact written by :meth:`NC64CDeployment.save` (or :meth:`TemporalDeployment.save`);
        refuses a tampered or corrupted one."""
        document, arrays, description = read_artifact(path, format=FORMAT, format_version=FORMAT_VERSION)
        if document.get("network") == NETWORK_KIND:
            return load_temporal(document, arrays, description)
        spec = ChipSpec.from_dict(document["spec"])
        layers = []
        for header in document["layers"]:
            header = {**header, "input_shape": tuple(header["input_shape"]), "output_shape": tuple(header["output_shape"]),
                      "stride": tuple(header["stride"]), "padding": tuple(header["padding"])}
            # read back from JSON and npz: the field types are those save() wrote, unknown to the type checker
            values: dict[str, Any] = {key: arrays.get(f"{header['name']}.{key}") for key in QuantizedLayer.ARRAYS}
            layers.append(QuantizedLayer(**header, **values))
        network = QuantizedNetwork(layers, arrays["input_scale"], spec, description)
        energy = None if document.get("energy") is None else EnergyEstimate(**document["energy"])
        return NC64CDeployment(network, Mapping.from_dict(document["mapping"]), document["calibration"],
                               document["action_rate_hz"], energy)


def _agreement_note(calibration: dict[str, Any]) -> str:
    """Where the report's agreement was measured (held-out observations, and how many)."""
    n = calibration.get("n_agreement_obs")
    if n is None:  # an artifact that predates the held-out measurement
        return f"greedy actions, {calibration.get('n_obs')} calibration obs"
    if not n:
        return "not measured: no held-out observations"
    what = (f"Box actions within {ACTION_TOLERANCE:.0%} of the range" if calibration.get("action_error") is not None
            else "greedy actions")
    return f"{what}, {n} held-out obs ({calibration.get('agreement_measured_on')}, not used to calibrate)"


def _max_abs(values: np.ndarray | None) -> int:
    """Largest magnitude of an integer array (``quantize_layer`` gives every synaptic layer weights)."""
    assert values is not None
    return int(np.abs(values).max())


def _range(values: np.ndarray | None) -> str:
    """``"a"`` or ``"[min, max]"`` of an array, ``"-"`` for ``None``."""
    if values is None:
        return "-"
    low, high = values.min(), values.max()
    fmt = (lambda x: str(int(x))) if np.issubdtype(values.dtype, np.integer) else (lambda x: f"{x:.3g}")
    return fmt(low) if low == high else f"[{fmt(low)}, {fmt(high)}]"

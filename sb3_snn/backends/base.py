"""The backend contract: a :class:`Backend` compiles a spiking description into a :class:`Deployment`.

A backend consumes only a :class:`~sb3_snn.spiking.SpikingDescription` (what
``policy.spiking_description()`` returns); it never reaches into a policy's internals. The flow
follows sinabs / PAIBox: *check* (constraints, before anything runs), *map* (cores), *build*
(quantised network, simulation, cost report, artifact).

Every backend is compiled the same way, so that the command line and the pipeline never ask which
one they hold::

    backend.compile(policy, example_obs, action_rate_hz=50.0, **options)

``action_rate_hz`` (actions per second) is the cost context every backend accepts: one with a power
model turns energy per action into watts with it, the others record it in their report. ``options``
are the backend's own (:meth:`Backend.compile_options`); an option it does not know raises
:class:`UnknownOptionError`, naming it and the accepted ones. A backend implements :meth:`Backend.build`.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.spiking.description import SpikingDescription


class BackendError(Exception):
    """Base class of the errors a backend raises on purpose (with a message meant for a user)."""


class FitError(BackendError, ValueError):
    """A network does not fit the target: names the layer, the resource and the limit it breaks.

    :param layer: the layer's name (or ``"network"`` for a whole-network resource)
    :param resource: what runs out (``"fan-in (axons per core)"``, ``"cores"``, ...)
    :param required: how much the layer needs
    :param limit: how much the target has
    :param target: the backend / chip name
    :param hint: what the user can change
    """

    def __init__(self, layer: str, resource: str, required: Any, limit: Any, target: str, hint: str = "") -> None:
        self.layer, self.resource, self.required, self.limit, self.target = layer, resource, required, limit, target
        message = f"layer {layer!r} does not fit {target}: {resource} needs {required}, limit is {limit}"
        super().__init__(message + (f" ({hint})" if hint else ""))


class UnsupportedNetworkError(BackendError, ValueError):
    """A network uses something the backend cannot express (a neuron model, a reset, an encoding).

    :param layer: the layer's name (or ``"network"``)
    :param feature: what is not supported
    :param reason: why
    :param target: the backend name
    """

    def __init__(self, layer: str, feature: str, reason: str, target: str) -> None:
        self.layer, self.feature, self.reason, self.target = layer, feature, reason, target
        super().__init__(f"layer {layer!r}: {target} cannot run {feature}: {reason}")


class ArtifactError(BackendError, ValueError):
    """An artifact on disk is missing, of another format or version, corrupted or tampered with."""


class UnknownOptionError(BackendError, TypeError):
    """``compile`` was given an option the backend does not have.

    :param target: the backend name
    :param unknown: the options it does not know
    :param accepted: the options it accepts
    """

    def __init__(self, target: str, unknown: list[str], accepted: list[str]) -> None:
        self.target, self.unknown, self.accepted = target, list(unknown), list(accepted)
        names = ", ".join(repr(name) for name in self.unknown)
        super().__init__(f"backend {target!r} has no option {names}; accepted: "
                         f"{', '.join([COST_CONTEXT, *self.accepted])}")


class InvalidOptionError(BackendError, TypeError):
    """``compile`` was given an option value of the wrong type (``weight_bits="abc"``).

    :param target: the backend name
    :param option: the option
    :param default: the backend's value for it (its type is the one expected)
    :param value: the value given
    """

    def __init__(self, target: str, option: str, default: Any, value: Any) -> None:
        self.target, self.option, self.default, self.value = target, option, default, value
        super().__init__(f"backend {target!r}: option {option!r} expects {_type_name(default)} (default {default!r}), "
                         f"got {value!r} ({type(value).__name__})")


class NonFiniteInputError(BackendError, ValueError):
    """Calibration / example observations hold NaN or infinite values."""


#: The compile option every backend accepts: actions per second, the context of its cost figures.
COST_CONTEXT = "action_rate_hz"


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "a boolean (true / false)"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "text"
    return f"a {type(default).__name__}"


def _fits(default: Any, value: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (an int where a float is expected fits; ``None`` always)."""
    if value is None or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return True


def as_batch(obs: Any, input_shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """SB3's ``predict`` rule: one observation (shape ``input_shape``) or a batch (``[batch, *input_shape]``).

    :param obs: one observation or a batch
    :param input_shape: the description's per-observation shape
    :return: ``(batch, single)``: the observations as a float64 batch, and whether one observation was given
    :raises ValueError: ``obs`` has neither shape (the message names the shape given and the two accepted)
    """
    array = np.asarray(obs, dtype=np.float64)
    shape = tuple(int(n) for n in input_shape)
    if array.shape == shape:
        return array[np.newaxis], True
    if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        return array, False
    raise ValueError(f"observation shape {array.shape} is neither one observation {shape} "
                     f"nor a batch (batch, {', '.join(map(str, shape))})")


def check_finite_rows(example_obs: np.ndarray, what: str = "example_obs",
                      why: str = "calibration needs finite observations") -> None:
    """Raise :class:`NonFiniteInputError` if a row of ``example_obs`` holds NaN or an infinity (naming how many).

    Calibration ranges, quantisation scales and activity estimates computed from such rows are NaN or
    infinite, with no error of their own.

    :param example_obs: ``[batch, ...]`` float observations
    :param what: what they are, for the message
    :param why: why they must be finite, for the message
    """
    rows = example_obs.reshape(len(example_obs), -1) if example_obs.ndim > 1 else example_obs.reshape(1, -1)
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if bad.size:
        first = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise NonFiniteInputError(f"{what}: {bad.size} of {len(rows)} rows hold NaN or infinite values (rows {first}); {why}")


@dataclass
class ReportSection:
    """One table of a report.

    :param title: heading printed above the table
    :param columns: column names
    :param rows: one list of cells per row (numbers, strings)
    """

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def render(self) -> str:
        """The section as an aligned text table."""
        cells = [[_cell(value) for value in row] for row in self.rows]
        widths = [max([len(col)] + [len(row[i]) for row in cells if i < len(row)]) for i, col in enumerate(self.columns)]
        lines = [self.title, "  ".join(col.ljust(w) for col, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in cells:  # a row may be shorter than the header
            lines.append("  ".join(cell.rjust(w) if _numeric(cell) else cell.ljust(w)
                                   for cell, w in zip(row, widths, strict=False)).rstrip())
        return "\n".join(lines)


@dataclass
class BackendReport:
    """What a deployment costs and how it was built: printable (``str``) and serialisable (``to_dict``).

    :param backend: the backend's registered name
    :param network: a one-line description of the network (layers, time steps)
    :param sections: the tables (summary, per-core mapping, energy, ...)
    :param notes: free text printed after the tables (assumptions, approximations)
    :param metrics: headline figures under standard names, for programs that compare backends:
        ``synops_per_action``, ``energy_per_action_uj``, ``latency_us``, ``power_w``, ``agreement``
        (each present where the backend estimates it)
    """

    backend: str
    network: str
    sections: list[ReportSection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def section(self, title: str) -> ReportSection:
        """The section called ``title`` (``KeyError`` if none)."""
        for section in self.sections:
            if section.title == title:
                return section
        raise KeyError(f"no report section {title!r}; sections: {[s.title for s in self.sections]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-compatible)."""
        return json.loads(json.dumps(asdict(self), default=_json_default))

    def to_json(self, indent: int = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        parts = [f"backend: {self.backend}", f"network: {self.network}"]
        parts += ["", *("\n\n".join(s.render() for s in self.sections)).splitlines()]
        if self.notes:
            parts += ["", "notes:"] + [f"  - {note}" for note in self.notes]
        return "\n".join(parts)


class Deployment(ABC):
    """A network compiled for one backend: runs, reports its cost, saves itself.

    :param description: the spiking description it was compiled from (kept, so that a loaded
        deployment can be compared with the float reference without the original policy)
    """

    backend_name: str = "?"

    def __init__(self, description: SpikingDescription) -> None:
        self.description = description

    def run(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions, with SB3's ``predict`` rule for shapes: one observation (shape
        ``description.input_shape``) gives one action (a 0-d array for discrete actions, an array of
        ``description.action_shape`` for Box actions), a batch ``[batch, *input_shape]`` gives ``[batch]``
        (``[batch, *action_shape]``) actions.

        :param obs: one observation or a batch, preprocessed as the description's input
        :raises ValueError: ``obs`` has neither shape
        :raises NonFiniteInputError: an observation holds NaN or an infinity (a deployment never acts on one)
        """
        batch, single = as_batch(obs, self.description.input_shape)
        check_finite_rows(batch, "observations given to run()", "a deployment does not act on them")
        actions = np.asarray(self._run_batch(batch))
        if self.description.is_continuous:
            actions = actions.reshape(len(batch), *self.description.action_shape)
            return actions[0] if single else actions
        return actions.reshape(()) if single else actions

    @abstractmethod
    def _run_batch(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[batch]`` for ``[batch, *input_shape]`` float64 observations (what :meth:`run` calls)."""

    @abstractmethod
    def report(self) -> BackendReport:
        """Resources, cost estimates and the assumptions behind them."""

    @abstractmethod
    def save(self, path: str | Path) -> Path:
        """Write the artifact into the folder ``path`` and return it."""


class Backend(ABC):
    """A hardware target (or an exchange format). Registered under the ``sb3_snn.backends`` entry-point group.

    A backend implements :meth:`build` (and :meth:`load_deployment`); :meth:`compile` resolves the
    policy into its description and refuses unknown options before calling it.
    """

    name: str = "?"

    def compile(self, policy: Any, example_obs: np.ndarray, *, action_rate_hz: float | None = None,
                **options: Any) -> Deployment:
        """Check, map and build a deployment.

        :param policy: a :class:`SpikingDescription`, an object with ``spiking_description()``, or a
            folder written by :meth:`SpikingDescription.to_files`
        :param example_obs: ``[batch, *input_shape]`` observations used for calibration and for the
            activity-based estimates of the report (preprocessed as the description's input)
        :param action_rate_hz: actions per second, the cost context (``None``: the backend's default)
        :param options: the backend's own options (:meth:`compile_options`)
        :raises UnknownOptionError: an option the backend does not accept
        :raises InvalidOptionError: an option value of another type than the backend's value for it
        :raises NonFiniteInputError: ``example_obs`` holds NaN or infinite values (how many rows is said)
        """
        self.check_options(options)
        description = as_description(policy)
        example = np.asarray(example_obs, dtype=np.float64)
        check_finite_rows(example)
        return self.build(description, example, action_rate_hz=action_rate_hz, **options)

    @abstractmethod
    def build(self, description: SpikingDescription, example_obs: np.ndarray, *, action_rate_hz: float | None = None,
              **options: Any) -> Deployment:
        """Check, map and build a deployment of ``description`` (what :meth:`compile` calls).

        :param description: the network
        :param example_obs: ``[batch, *input_shape]`` float64 observations
        :param action_rate_hz: actions per second, the cost context (``None``: the backend's default)
        :param options: the backend's own options, already checked against :meth:`compile_options`
        """

    def compile_options(self) -> list[str]:
        """The options :meth:`compile` accepts besides ``action_rate_hz``: by default the named keyword
        parameters of :meth:`build` (a backend that takes ``**options`` lists them itself)."""
        skip = {"description", "example_obs", COST_CONTEXT}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return sorted(name for name, parameter in inspect.signature(self.build).parameters.items()
                      if parameter.kind in kinds and name not in skip)

    def option_defaults(self) -> dict[str, Any]:
        """The backend's value for each option whose type is known: the defaults of :meth:`build`'s named
        parameters, and the fields of a dataclass ``spec`` attribute when the backend has one (a chip's
        parameters). :meth:`check_options` checks the type of a value given against these."""
        defaults: dict[str, Any] = {}
        spec = getattr(self, "spec", None)
        if spec is not None and hasattr(spec, "__dataclass_fields__") and not isinstance(spec, type):
            defaults.update({name: getattr(spec, name) for name in spec.__dataclass_fields__})
        for name, parameter in inspect.signature(self.build).parameters.items():
            if parameter.default is not inspect.Parameter.empty and parameter.default is not None:
                defaults[name] = parameter.default
        return defaults

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`UnknownOptionError` for any option that is not in :meth:`compile_options`, and
        :class:`InvalidOptionError` for a value whose type differs from :meth:`option_defaults`'.

        :param options: option names (and values) meant for :meth:`compile`
        """
        accepted = self.compile_options()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UnknownOptionError(self.name, unknown, accepted)
        defaults = self.option_defaults()
        for option, value in options.items():
            if option in defaults and not _fits(defaults[option], value):
                raise InvalidOptionError(self.name, option, defaults[option], value)

    @abstractmethod
    def load_deployment(self, path: str | Path) -> Deployment:
        """Read an artifact written by :meth:`Deployment.save` (no pickle, no code execution)."""


def as_description(policy: Any) -> SpikingDescription:
    """The spiking description of ``policy``.

    :param policy: a :class:`SpikingDescription`, an object with a ``spiking_description()`` method,
        or a folder written by :meth:`SpikingDescription.to_files`
    """
    if isinstance(policy, SpikingDescription):
        return policy
    if isinstance(policy, (str, Path)):
        return SpikingDescription.from_files(policy)
    method = getattr(policy, "spiking_description", None)
    if callable(method):
        description = method()
        if not isinstance(description, SpikingDescription):
            raise TypeError(f"{type(policy).__name__}.spiking_description() returned {type(description).__name__}")
        return description
    raise TypeError(
        f"{type(policy).__name__} is not a spiking policy: it has no spiking_description() method "
        "(convert a DQN first with `sb3-snn convert`, or pass a SpikingDescription)"
    )


def agreement(actions: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of equal greedy actions.

    :param actions: ``[batch]``
    :param reference: ``[batch]``
    """
    actions, reference = np.asarray(actions).ravel(), np.asarray(reference).ravel()
    if actions.shape != reference.shape:
        raise ValueError(f"cannot compare {actions.shape} actions with {reference.shape}")
    return float((actions == reference).mean()) if actions.size else float("nan")


def describe_network(description: SpikingDescription) -> str:
    """One line: layers with their neuron models, time steps, encoding and readout."""
    parts = []
    for layer in description.layers:
        if layer.kind == "flatten":
            continue
        model = layer.neuron.model if layer.neuron is not None else "-"
        parts.append(f"{layer.name}:{layer.kind}{list(layer.output_shape)}/{model}")
    return (
        f"{' -> '.join(parts)}; T={description.timesteps}, encoding={description.encoding.get('kind')}, "
        f"readout={description.readout.get('kind')}"
    )


def _numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", ""))
    except ValueError:
        return False
    return True


def _cell(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return "" if value is None else str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")

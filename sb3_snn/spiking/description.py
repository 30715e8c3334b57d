"""The spiking description: the one hand-off between a spiking policy and a hardware backend.

Plain data (dataclasses + numpy arrays), serialisable to ``description.json`` + ``weights.npz``
without pickle. Every spiking policy produces one (``policy.spiking_description()``); every backend
consumes only this.

Discrete-time neuron semantics shared by every consumer (one step ``t = 1..T``)::

    v[t] = decay * v[t-1] + I[t]               (I = W · input spikes (or current) + bias)
    s[t] = 1 if v[t] >= threshold else 0
    v[t] = v[t] - threshold * s[t]             reset == "subtract"
    v[t] = reset_value         where s[t] = 1  reset == "zero"

``decay = 1`` is integrate-and-fire (IF); ``0 < decay < 1`` is leaky (LIF, spikingjelly's
``LIFNode(tau, decay_input=False)`` has ``decay = 1 - 1/tau``). ``model = "nonspiking"`` integrates
without firing (a readout). ``model = "temporal"`` is a time-to-first-spike neuron (CVTC/Mostafa)
whose parameters are in ``params``; backends that only run discrete-time neurons refuse it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "sb3-snn/spiking-description"
FORMAT_VERSION = 1
NEURON_MODELS = ("IF", "LIF", "nonspiking", "temporal")
LAYER_KINDS = ("linear", "conv2d", "flatten")


@dataclass
class NeuronPopulation:
    """The neurons that follow a layer.

    :param model: one of :data:`NEURON_MODELS`
    :param threshold: firing threshold
    :param decay: membrane decay per step (1.0: no leak)
    :param reset: ``"subtract"``, ``"zero"`` or ``"none"`` (non-spiking)
    :param reset_value: membrane value after a spike when ``reset == "zero"``
    :param params: model-specific extras (e.g. ``{"beta": 1e-3, "tau_syn": 1.0}`` for temporal)
    """

    model: str
    threshold: float = 1.0
    decay: float = 1.0
    reset: str = "subtract"
    reset_value: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in NEURON_MODELS:
            raise ValueError(f"unknown neuron model {self.model!r}; expected one of {NEURON_MODELS}")
        if self.reset not in ("subtract", "zero", "none"):
            raise ValueError(f"unknown reset {self.reset!r}; expected 'subtract', 'zero' or 'none'")


@dataclass
class Layer:
    """One synaptic layer and the neurons it drives.

    :param name: unique, human-readable (errors name it)
    :param kind: one of :data:`LAYER_KINDS`
    :param input_shape: shape of one sample's input, without batch
    :param output_shape: shape of one sample's output, without batch
    :param weight: ``[out, in]`` (linear) or ``[out_c, in_c, kh, kw]`` (conv2d); ``None`` for flatten
    :param bias: ``[out]`` or ``None``; added to the input current every step
    :param stride: conv2d stride
    :param padding: conv2d padding
    :param neuron: the population after the layer; ``None`` for flatten
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    neuron: NeuronPopulation | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}; expected one of {LAYER_KINDS}")
        self.input_shape = tuple(int(n) for n in self.input_shape)
        self.output_shape = tuple(int(n) for n in self.output_shape)
        self.stride = tuple(int(n) for n in self.stride)  # type: ignore[assignment]
        self.padding = tuple(int(n) for n in self.padding)  # type: ignore[assignment]

    @property
    def n_neurons(self) -> int:
        """Neurons in the population after this layer (0 for flatten)."""
        return int(np.prod(self.output_shape)) if self.neuron is not None else 0

    @property
    def n_synapses(self) -> int:
        """Stored weights (a conv kernel is shared, so this is not the connection count)."""
        return int(self.weight.size) if self.weight is not None else 0


@dataclass
class SpikingDescription:
    """An ordered feed-forward spiking network, its input encoding, time steps and readout.

    :param layers: in execution order
    :param input_shape: shape of one observation as the network sees it
    :param encoding: ``{"kind": "analog"}`` (constant current every step),
        ``{"kind": "frames", "n_frames": F, "steps_per_frame": k}`` (frame ``f`` of a stack fed at steps
        ``f*k .. f*k+k-1``, oldest first) or ``{"kind": "population_temporal", ...}`` (CVTC)
    :param timesteps: number of simulation steps per action
    :param readout: ``{"kind": "rate" | "robust" | "membrane_mean" | "spike_time", ...}`` over the last layer.
        Discrete actions: the action is the argmax of the readout values. A Box action space adds
        ``"squash"``, ``"low"`` and ``"high"`` (lists, one per action dimension): the action is the readout
        values squashed into ``[low, high]``, ``"tanh"``: ``low + (tanh(u) + 1) / 2 * (high - low)`` (SAC,
        TD3, DDPG teachers) or ``"clip"``: ``clip(u, low, high)`` (PPO, A2C teachers); see
        :func:`sb3_snn.spiking.simulate.squash_outputs`. An optional ``"shape"`` (a list) records the Box's
        shape where it is not ``(n_actions,)`` (:attr:`action_shape`)
    :param n_actions: number of discrete actions, or of action dimensions of a Box (outputs of the last layer)
    :param metadata: free-form provenance (method, source model, env id, ...)
    """

    layers: list[Layer]
    input_shape: tuple[int, ...]
    encoding: dict[str, Any]
    timesteps: int
    readout: dict[str, Any]
    n_actions: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(n) for n in self.input_shape)
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")

    @property
    def is_continuous(self) -> bool:
        """Whether the actions are continuous (a Box action space): the readout carries a ``"squash"``."""
        return self.readout.get("squash") is not None

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one action, as SB3's ``predict`` returns it for one observation: ``()`` for a discrete
        action; for a Box, ``readout["shape"]`` where the policy records it, else ``(n_actions,)``."""
        if not self.is_continuous:
            return ()
        shape = self.readout.get("shape")
        return tuple(int(n) for n in shape) if shape is not None else (int(self.n_actions),)

    @property
    def is_temporal(self) -> bool:
        """Whether any layer has time-to-first-spike (``"temporal"``) neurons: such a network has no
        discrete-time steps, so discrete-time simulators and chips cannot run it as it is."""
        return any(layer.neuron is not None and layer.neuron.model == "temporal" for layer in self.layers)

    def to_files(self, path: str | Path) -> Path:
        """Write ``description.json`` and ``weights.npz`` into the folder ``path``; returns it."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}  # numpy arrays; Any lets ``**arrays`` pass np.savez's keyword parameters
        layers = []
        for layer in self.layers:
            record = asdict(layer)
            for key in ("weight", "bias"):
                value = getattr(layer, key)
                record[key] = None
                if value is not None:
                    record[key] = f"{layer.name}.{key}"
                    arrays[record[key]] = np.asarray(value)
            layers.append(record)
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "encoding": self.encoding,
            "timesteps": self.timesteps,
            "readout": self.readout,
            "n_actions": self.n_actions,
            "metadata": self.metadata,
            "layers": layers,
        }
        np.savez(folder / "weights.npz", **arrays)
        (folder / "description.json").write_text(json.dumps(document, indent=2, default=_json_default))
        return folder

    @classmethod
    def from_files(cls, path: str | Path) -> SpikingDescription:
        """Read a folder written by :meth:`to_files` (no pickle, no code execution)."""
        folder = Path(path)
        json_path, npz_path = folder / "description.json", folder / "weights.npz"
        for needed in (json_path, npz_path):
            if not needed.is_file():
                raise FileNotFoundError(f"spiking description: missing {needed}")
        try:
            document = json.loads(json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{json_path}: not valid JSON (truncated or corrupted?): {error}") from error
        if not isinstance(document, dict):
            raise ValueError(f"{json_path}: expected a JSON object, got a {type(document).__name__}")
        if document.get("format") != FORMAT:
            raise ValueError(f"{json_path}: not a spiking description (format={document.get('format')!r})")
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{json_path}: format version {document.get('format_version')} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            with np.load(npz_path, allow_pickle=False) as arrays:
                layers = []
                for record in document["layers"]:
                    for key in ("weight", "bias"):
                        if record[key] is not None:
                            record[key] = arrays[record[key]]
                    neuron = record.pop("neuron")
                    layers.append(Layer(**record, neuron=NeuronPopulation(**neuron) if neuron else None))
            return cls(
                layers=layers,
                input_shape=tuple(document["input_shape"]),
                encoding=document["encoding"],
                timesteps=int(document["timesteps"]),
                readout=document["readout"],
                n_actions=int(document["n_actions"]),
                metadata=document.get("metadata", {}),
            )
        except KeyError as error:
            raise ValueError(f"{json_path} / {npz_path.name}: missing entry {error}") from error
        except (TypeError, zipfile.BadZipFile, OSError) as error:
            raise ValueError(f"{folder}: malformed spiking description: {error}") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} into a spiking description")

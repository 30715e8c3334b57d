"""The built-in ``nir`` backend: writes a spiking description as a NIR graph (``nir.write``, HDF5).

NIR (Neuromorphic Intermediate Representation) describes neurons as continuous-time ODEs; a reader
discretises them with its own time step ``dt`` (forward Euler). Our discrete-time semantics (see
:mod:`sb3_snn.spiking.description`) ``v[t] = decay * v[t-1] + I[t]`` map exactly as follows:

======================  =================================================  ===============================
description             NIR node                                           why
======================  =================================================  ===============================
IF, reset zero          ``IF(r = 1/dt, v_threshold, v_reset)``             ``dv/dt = r I``: ``v += dt r I = I``
LIF, reset zero         ``LIF(tau = dt/(1-decay), r = 1/(1-decay),``        ``tau dv/dt = v_leak - v + r I``:
                        ``v_leak = 0, v_threshold, v_reset)``              ``v += dt/tau (-v) + dt r/tau I``
non-spiking, decay 1    ``I(r = 1/dt)``                                    integrator
non-spiking, decay < 1  ``LI(tau = dt/(1-decay), r = 1/(1-decay), v_leak=0)``  leaky integrator
linear / conv2d         ``Affine`` (``Linear`` without bias) / ``Conv2d``   bias added every step
flatten                 ``Flatten(start_dim=0)``                           shapes without batch
======================  =================================================  ===============================

``r = tau/dt`` for LIF is spikingjelly's ``LIFNode(tau, decay_input=False)`` (``tau_sj = 1/(1-decay)``).

NIR has no reset by subtraction: an ``IF``/``LIF`` population with ``reset = "subtract"`` (a
converted network) is refused with that reason, unless ``approximate_reset=True`` is passed, in which
case it is written as a reset to 0 (a different network: :meth:`NIRDeployment.run` simulates exactly
what the file says, so the report's agreement figure shows the cost of the approximation). Temporal
(CVTC) neurons have no NIR node and are refused. The readout, the input encoding and the time steps
are not NIR concepts: they are stored as JSON in the graph's ``metadata["sb3_snn"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends.artifact import read_artifact, write_artifact
from sb3_snn.backends.base import (
    Backend,
    BackendReport,
    Deployment,
    ReportSection,
    UnsupportedNetworkError,
    agreement,
    as_description,
    describe_network,
)
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.simulate import simulate

FORMAT = "sb3-snn/nir-deployment"
FORMAT_VERSION = 1
GRAPH_FILE = "model.nir"
DEFAULT_DT = 1e-4  # what most NIR readers (and spikingjelly's importer) assume


def _require_nir() -> Any:
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the nir backend needs the `nir` package: pip install 'sb3-snn[nir]'") from exc
    return nir


def check_nir(description: SpikingDescription, approximate_reset: bool = False) -> list[str]:
    """Raise :class:`UnsupportedNetworkError` for what NIR cannot express; return the approximations made.

    :param description: the network
    :param approximate_reset: write reset-by-subtraction populations as reset-to-zero instead of refusing
    """
    approximations = []
    if description.encoding.get("kind") not in ("analog", "frames"):
        raise UnsupportedNetworkError("network", f"the {description.encoding.get('kind')!r} encoding",
                                      "NIR graphs take a per-step input; only analog and frame inputs are described", "nir")
    for layer in description.layers:
        neuron = layer.neuron
        if neuron is None:
            continue
        if neuron.model == "temporal":
            raise UnsupportedNetworkError(layer.name, "temporal (time-to-first-spike) neurons",
                                          "NIR has no node for them", "nir")
        if neuron.model in ("IF", "LIF") and neuron.reset == "subtract":
            if not approximate_reset:
                raise UnsupportedNetworkError(
                    layer.name, "reset by subtraction",
                    "NIR has no reset by subtraction (IF/LIF nodes reset to v_reset); pass approximate_reset=True "
                    "(CLI: --approximate-reset) to write a reset to 0 instead, which changes the network", "nir")
            approximations.append(f"{layer.name}: reset by subtraction written as reset to 0")
        if neuron.decay != 1.0 and not 0 < neuron.decay < 1:
            raise UnsupportedNetworkError(layer.name, f"decay {neuron.decay}", "decay must lie in (0, 1]", "nir")
    return approximations


def _neuron_node(nir: Any, neuron: NeuronPopulation, shape: tuple[int, ...], dt: float) -> Any:
    full = lambda value: np.full(shape, float(value))  # noqa: E731
    reset = neuron.reset_value if neuron.reset == "zero" else 0.0
    if neuron.model == "nonspiking":
        if neuron.decay == 1.0:
            return nir.I(r=full(1.0 / dt))
        tau = dt / (1.0 - neuron.decay)
        return nir.LI(tau=full(tau), r=full(tau / dt), v_leak=full(0.0))
    if neuron.decay == 1.0:
        return nir.IF(r=full(1.0 / dt), v_threshold=full(neuron.threshold), v_reset=full(reset))
    tau = dt / (1.0 - neuron.decay)
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(neuron.threshold),
                   v_reset=full(reset))


def step_input_shape(description: SpikingDescription) -> tuple[int, ...]:
    """Shape of the network's input at one step (a frame stack feeds one frame per step)."""
    shape = list(description.input_shape)
    if description.encoding.get("kind") == "frames":
        shape[int(description.encoding.get("frame_axis", 0))] = 1
    return tuple(shape)


def to_nir(description: SpikingDescription, dt: float = DEFAULT_DT, approximate_reset: bool = False) -> Any:
    """The description as a ``nir.NIRGraph`` (nodes ``input``, per layer ``<name>`` and ``<name>_neuron``, ``output``).

    :param description: the network
    :param dt: the time step a reader should discretise with (only the ratios in the table above matter)
    :param approximate_reset: see :func:`check_nir`
    """
    nir = _require_nir()
    approximations = check_nir(description, approximate_reset)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(step_input_shape(description)))}
    edges, previous = [], "input"
    for layer in description.layers:
        if layer.kind == "flatten":
            node = nir.Flatten(input_type=np.array(layer.input_shape), start_dim=0, end_dim=-1)
        elif layer.kind == "linear":
            weight = np.asarray(layer.weight, dtype=np.float64)
            node = nir.Linear(weight=weight) if layer.bias is None else nir.Affine(weight=weight, bias=np.asarray(layer.bias, dtype=np.float64))
        else:
            bias = np.zeros(layer.weight.shape[0]) if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
            node = nir.Conv2d(input_shape=tuple(layer.input_shape[1:]), weight=np.asarray(layer.weight, dtype=np.float64),
                              stride=tuple(layer.stride), padding=tuple(layer.padding), dilation=(1, 1), groups=1, bias=bias)
        nodes[layer.name] = node
        edges.append((previous, layer.name))
        previous = layer.name
        if layer.neuron is not None:
            name = f"{layer.name}_neuron"
            nodes[name] = _neuron_node(nir, layer.neuron, layer.output_shape, dt)
            edges.append((previous, name))
            previous = name
    nodes["output"] = nir.Output(output_type=np.array(description.layers[-1].output_shape))
    edges.append((previous, "output"))
    extra = {"format": "sb3-snn/nir-metadata", "dt": dt, "input_shape": list(description.input_shape),
             "encoding": description.encoding, "timesteps": description.timesteps, "readout": description.readout,
             "n_actions": description.n_actions, "approximations": approximations,
             "layer_shapes": {layer.name: [list(layer.input_shape), list(layer.output_shape)] for layer in description.layers}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"sb3_snn": json.dumps(extra)})


def _uniform(values: Any, what: str) -> float:
    unique = np.unique(np.asarray(values, dtype=np.float64))
    if unique.size != 1:
        raise ValueError(f"{what} is not uniform across the population; a description has one value per layer")
    return float(unique[0])


def from_nir(graph: Any) -> SpikingDescription:
    """Rebuild a description from a graph written by :func:`to_nir` (the inverse mapping of the table).

    :param graph: a ``nir.NIRGraph`` or a path to a ``.nir`` file
    """
    nir = _require_nir()
    if isinstance(graph, (str, Path)):
        graph = nir.read(graph)
    raw = graph.metadata.get("sb3_snn") if isinstance(graph.metadata, dict) else None
    if raw is None:
        raise ValueError("this NIR graph was not written by sb3-snn (no metadata['sb3_snn'])")
    meta = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    dt = float(meta["dt"])
    following = dict(graph.edges)
    layers: list[Layer] = []
    name = following["input"]
    while name != "output":
        node = graph.nodes[name]
        in_shape, out_shape = meta["layer_shapes"][name]
        neuron_name = following[name]
        neuron = None
        if neuron_name.endswith("_neuron") and neuron_name in graph.nodes:
            neuron = _population(nir, graph.nodes[neuron_name], dt)
            after = following[neuron_name]
        else:
            after = neuron_name
        if isinstance(node, nir.Flatten):
            layers.append(Layer(name, "flatten", in_shape, out_shape))
        elif isinstance(node, (nir.Affine, nir.Linear)):
            layers.append(Layer(name, "linear", in_shape, out_shape, np.asarray(node.weight), getattr(node, "bias", None),
                                neuron=neuron))
        elif isinstance(node, nir.Conv2d):
            layers.append(Layer(name, "conv2d", in_shape, out_shape, np.asarray(node.weight), np.asarray(node.bias),
                                stride=_pair(node.stride), padding=_pair(node.padding),
                                neuron=neuron))
        else:
            raise ValueError(f"node {name!r}: unexpected NIR node {type(node).__name__}")
        name = after
    return SpikingDescription(layers, tuple(meta["input_shape"]), meta["encoding"], int(meta["timesteps"]),
                              meta["readout"], int(meta["n_actions"]), metadata={"source": "nir", "dt": dt})


def _pair(value: Any) -> tuple[int, int]:
    return tuple(int(v) for v in np.broadcast_to(np.atleast_1d(np.asarray(value)), (2,)))  # type: ignore[return-value]


def _population(nir: Any, node: Any, dt: float) -> NeuronPopulation:
    if isinstance(node, nir.I):
        return NeuronPopulation("nonspiking", decay=1.0, reset="none")
    if isinstance(node, nir.LI):
        return NeuronPopulation("nonspiking", decay=1.0 - dt / _uniform(node.tau, "LI.tau"), reset="none")
    reset = _uniform(node.v_reset, "v_reset")
    threshold = _uniform(node.v_threshold, "v_threshold")
    if isinstance(node, nir.IF):
        return NeuronPopulation("IF", threshold=threshold, decay=1.0, reset="zero", reset_value=reset)
    if isinstance(node, nir.LIF):
        return NeuronPopulation("LIF", threshold=threshold, decay=1.0 - dt / _uniform(node.tau, "LIF.tau"),
                                reset="zero", reset_value=reset)
    raise ValueError(f"unexpected NIR neuron node {type(node).__name__}")


class NIRDeployment(Deployment):
    """A NIR graph plus the description it came from.

    :param graph: the ``nir.NIRGraph``
    :param description: the original description
    :param approximations: what was approximated (empty: exact)
    :param dt: the time step written into the graph's constants
    :param calibration: agreement of the graph's network with the original, on the example observations
    """

    backend_name = "nir"

    def __init__(self, graph: Any, description: SpikingDescription, approximations: list[str], dt: float,
                 calibration: dict[str, Any]) -> None:
        super().__init__(description)
        self.graph, self.approximations, self.dt, self.calibration = graph, approximations, dt, calibration
        self.exported = from_nir(graph)

    def run(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions of the network the NIR graph describes (float reference simulation)."""
        return simulate(self.exported, obs).actions

    def report(self) -> BackendReport:
        """The graph's nodes with their NIR parameters, and the approximations made."""
        rows = []
        for name, node in self.graph.nodes.items():
            params = {key: value for key, value in vars(node).items() if key not in ("input_type", "output_type", "metadata")}
            shown = []
            for key, value in params.items():
                arr = np.asarray(value)
                if arr.ndim == 0 or key in ("stride", "padding", "dilation", "groups", "start_dim", "end_dim"):
                    shown.append(f"{key}={arr.tolist()}")
                elif key in ("weight", "bias"):
                    shown.append(f"{key}{list(arr.shape)}")
                else:
                    unique = np.unique(arr)
                    shown.append(f"{key}={unique[0]:.6g}" if unique.size == 1 else f"{key}[{arr.size} values]")
            out = node.output_type.get("output") if isinstance(node.output_type, dict) else None
            rows.append([name, type(node).__name__, "-" if out is None else list(np.asarray(out).tolist()), ", ".join(shown)])
        summary = ReportSection("summary", ["quantity", "value"], [
            ["nodes", len(self.graph.nodes)], ["edges", len(self.graph.edges)], ["dt", self.dt],
            ["exact", not self.approximations],
            ["agreement with original", self.calibration.get("agreement")],
            ["example observations", self.calibration.get("n_obs")],
        ])
        notes = [f"approximation: {a}" for a in self.approximations]
        notes.append(f"neuron constants assume a reader discretising with dt={self.dt:g} (forward Euler); "
                     "readout, encoding and time steps are in metadata['sb3_snn']")
        return BackendReport("nir", describe_network(self.description),
                             [summary, ReportSection("nodes", ["node", "type", "shape", "parameters"], rows)], notes)

    def save(self, path: str | Path) -> Path:
        """Write ``model.nir`` (readable with ``nir.read``) + the checksummed artifact files."""
        nir = _require_nir()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        nir.write(folder / GRAPH_FILE, self.graph)
        document = {"backend": "nir", "dt": self.dt, "approximations": self.approximations,
                    "calibration": self.calibration, "graph": GRAPH_FILE}
        return write_artifact(folder, format=FORMAT, format_version=FORMAT_VERSION, document=document, arrays={},
                              description=self.description, extra_files=(GRAPH_FILE,))


class NIRBackend(Backend):
    """The ``nir`` backend: a NIR graph file for other neuromorphic toolchains (Lava, Xylo, Speck, spikingjelly, ...).

    :param dt: the time step the NIR constants are written for
    :param approximate_reset: write reset-by-subtraction as reset-to-zero instead of refusing
    """

    name = "nir"

    def __init__(self, dt: float = DEFAULT_DT, approximate_reset: bool = False) -> None:
        self.dt, self.approximate_reset = dt, approximate_reset

    def compile(self, policy: Any, example_obs: np.ndarray, approximate_reset: bool | None = None,
                dt: float | None = None) -> NIRDeployment:
        """Check that NIR can express the network, build the graph, and compare it with the original.

        :param policy: a spiking description, a spiking policy or a description folder
        :param example_obs: ``[batch, *input_shape]`` observations for the agreement figure
        :param approximate_reset: overrides the backend's setting
        :param dt: overrides the backend's setting
        :raises UnsupportedNetworkError: reset by subtraction (without the flag), temporal neurons
        """
        description = as_description(policy)
        dt = self.dt if dt is None else dt
        approx = self.approximate_reset if approximate_reset is None else approximate_reset
        approximations = check_nir(description, approx)
        graph = to_nir(description, dt=dt, approximate_reset=approx)
        deployment = NIRDeployment(graph, description, approximations, dt, {})
        example_obs = np.asarray(example_obs, dtype=np.float64)
        reference = simulate(description, example_obs).actions
        deployment.calibration = {"n_obs": int(len(example_obs)),
                                  "agreement": agreement(deployment.run(example_obs), reference)}
        return deployment

    def load_deployment(self, path: str | Path) -> NIRDeployment:
        """Read a folder written by :meth:`NIRDeployment.save` (checksums verified)."""
        nir = _require_nir()
        document, _, description = read_artifact(path, format=FORMAT, format_version=FORMAT_VERSION)
        graph = nir.read(Path(path) / document["graph"])
        return NIRDeployment(graph, description, document["approximations"], document["dt"], document["calibration"])


def spikingjelly_outputs(graph: Any, description: SpikingDescription, obs: np.ndarray, dt: float = DEFAULT_DT) -> np.ndarray:
    """Rebuild the graph with spikingjelly's NIR importer and run it step by step; returns readout values.

    The encoding, time steps and readout come from ``description`` (they are not NIR concepts).
    Supports the ``rate``, ``robust`` and ``membrane_*`` readouts where spikingjelly can import every node
    (it has no mapping for NIR ``I``/``LI`` nodes, so a non-spiking readout layer cannot be rebuilt).

    :param graph: a ``nir.NIRGraph`` or path
    :param description: the description (encoding, time steps, readout)
    :param obs: ``[batch, *input_shape]``
    :param dt: the ``dt`` the graph was written with
    """
    import torch as th
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    from sb3_snn.spiking.simulate import encode_step

    module = import_from_nir(graph, dt=dt, dtype=th.float64)
    x_obs = th.as_tensor(np.asarray(obs), dtype=th.float64)
    last = description.layers[-1]
    state, summed = None, None
    with th.no_grad():
        for step in range(description.timesteps):
            out, state = module(encode_step(description, x_obs, step), state)
            summed = out.clone() if summed is None else summed + out
    steps, scale = description.timesteps, float(description.readout.get("scale", 1.0))
    kind = description.readout["kind"]
    if kind in ("rate", "membrane_mean"):
        return (scale * summed / steps).numpy()
    v = state[f"{last.name}_neuron"][0]
    if kind == "robust":
        return (scale * (summed / steps + v / (steps * last.neuron.threshold))).numpy()
    return (scale * v).numpy()

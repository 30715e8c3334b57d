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
converted network) is refused with that reason, unless ``approximate_reset=True`` is passed (CLI:
``--set approximate_reset=true``), in which
case it is written as a reset to 0 (a different network: :meth:`NIRDeployment.run` simulates exactly
what the file says, so the report's agreement figure shows the cost of the approximation). The readout,
the input encoding and the time steps are not NIR concepts: they are stored as JSON in the graph's
``metadata["sb3_snn"]``.

Temporal (CVTC) neurons, beta-free (Mostafa) inference only. Such a neuron is a non-leaky
integrate-and-fire neuron fed by an exponentially decaying synaptic current (tau_syn = 1, threshold 1):
``V(t) = sum_i w_i (1 - exp(-(t - t_i)))``; its output is the time of its *first* threshold crossing.
In NIR (continuous time, no ``dt`` involved; the time unit is tau_syn) a layer is written as

* ``temporal_node="cuba_lif"`` (default, one node most hardware toolchains map):
  ``Linear(W)`` -> ``CubaLIF(tau_syn=1, tau_mem=T, r=T, v_leak=0, v_threshold=1, v_reset=-1e6)``.
  NIR 1.0.8 has no leak-free current-based node, so the integrator is a LIF with a very long
  membrane constant ``T`` (``tau_mem``, default 1e6): ``dv/dt = I - v/T``, i.e. spike times
  off by a relative ~t/T (t <= ln(z_never) ~ 7), listed as an approximation in the report;
* ``temporal_node="li_if"`` (exact): ``Linear(W)`` -> ``LI(tau=1, r=1, v_leak=0)`` (the synaptic
  current) -> ``IF(r=1, v_threshold=1, v_reset=-1e6)`` (the leak-free membrane).

``v_reset = -1e6`` makes a literal simulation fire each neuron at most once. The input of the graph is
the *spike times* ``t_i = ln(z_i)`` of the population encoder (one spike per input neuron), which runs
on the host (observation -> spike times; its constants are ``metadata["sb3_snn"]["encoding"]``); the
readout (``metadata["sb3_snn"]["readout"]``, ``temporal``) is the output neurons' first spike times,
``Q = q_sign * exp(t_out)``, action ``argmax``; a neuron silent until ``z_never`` counts as firing at
``ln(z_never)``. A description with ``beta != 0`` (a CVTC policy in its ``"beta"`` inference mode) is
refused unless ``drop_beta=True`` (CLI: ``--set drop_beta=true``): the graph is then the beta-free network
and the report's agreement figure measures what dropping beta costs. Both the original and the written
network run on :func:`sb3_snn.spiking.simulate`, which computes temporal networks' exact spike times.

Saving: ``deployment.save("student.nir")`` writes the graph at that path (``nir.write``, what ``nir.read`` and
other toolchains open) and a JSON sidecar ``student.nir.json`` (checksums, policy kind, preprocessing,
encoding, readout); a folder path keeps the artifact folder (``model.nir`` + ``deployment.json``) that
``sb3-snn export --out`` writes. :mod:`sb3_snn.backends.nir_interchange` runs a written graph in other
frameworks (snnTorch, norse).

``action_rate_hz`` (the cost context of :meth:`sb3_snn.backends.Backend.compile`) has no NIR meaning: it is
recorded in the report and the artifact, for the toolchain that runs the graph.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends.artifact import _document_checksum, _sha256, read_artifact, write_artifact
from sb3_snn.backends.base import (
    COST_CONTEXT,
    ArtifactError,
    Backend,
    BackendReport,
    Deployment,
    ReportSection,
    UnsupportedNetworkError,
    _json_default,
    agreement,
    describe_network,
)
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.simulate import simulate

FORMAT = "sb3-snn/nir-deployment"
FORMAT_VERSION = 1
GRAPH_FILE = "model.nir"  # the graph inside an artifact folder
GRAPH_SUFFIX = ".nir"  # save("x.nir") writes the graph at that path
SIDECAR_SUFFIX = ".json"  # ... and its metadata in "x.nir.json"
SIDECAR_FORMAT = "sb3-snn/nir-sidecar"
SIDECAR_VERSION = 1
DEFAULT_DT = 1e-4  # what most NIR readers (and spikingjelly's importer) assume


def _require_nir() -> Any:
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the nir backend needs the `nir` package: pip install 'sb3-snn[nir]'") from exc
    return nir


TEMPORAL_NODES = ("cuba_lif", "li_if")
TEMPORAL_TAU_MEM = 1e6  # the CubaLIF membrane constant standing in for "no leak" (time unit: tau_syn = 1)
TEMPORAL_V_RESET = -1e6  # far below threshold: a literal simulation fires each neuron once


def check_temporal(
    description: SpikingDescription,
    drop_beta: bool = False,
    temporal_node: str = "cuba_lif",
    tau_mem: float = TEMPORAL_TAU_MEM,
) -> list[str]:
    """The checks of :func:`check_nir` for a CVTC (time-to-first-spike) network; returns the approximations."""
    if temporal_node not in TEMPORAL_NODES:
        raise ValueError(f"temporal_node must be one of {TEMPORAL_NODES}, got {temporal_node!r}")
    approximations = []
    if description.encoding.get("kind") != "population_temporal":
        raise UnsupportedNetworkError(
            "network",
            f"temporal neurons with the {description.encoding.get('kind')!r} encoding",
            "a temporal (time-to-first-spike) network takes spike times from a 'population_temporal' encoder",
            "nir",
        )
    if description.readout.get("kind") != "spike_time":
        raise UnsupportedNetworkError(
            "network",
            f"the {description.readout.get('kind')!r} readout with temporal neurons",
            "a temporal network is read out by its output spike times",
            "nir",
        )
    for layer in description.layers:
        neuron = layer.neuron
        if neuron is None or neuron.model != "temporal" or layer.kind != "linear" or layer.bias is not None:
            raise UnsupportedNetworkError(
                layer.name,
                "a layer other than a bias-free linear layer of temporal neurons",
                "only all-temporal (CVTC) networks are written as time-to-first-spike graphs",
                "nir",
            )
        params = neuron.params or {}
        if float(params.get("tau_syn", 1.0)) != 1.0 or neuron.threshold != 1.0:
            raise UnsupportedNetworkError(
                layer.name,
                f"tau_syn {params.get('tau_syn')} / threshold {neuron.threshold}",
                "the CVTC mapping assumes tau_syn = 1 and threshold 1",
                "nir",
            )
        beta = float(params.get("beta", 0.0))
        if beta != 0.0:
            if not drop_beta:
                raise UnsupportedNetworkError(
                    layer.name,
                    f"temporal neurons with beta = {beta:g}",
                    "NIR has no node for the beta term (V += beta * exp(t)); export the beta-free (Mostafa) "
                    "network (the policy in its 'mostafa' inference mode) or pass drop_beta=True "
                    "(CLI: --set drop_beta=true), which changes the network",
                    "nir",
                )
            approximations.append(f"{layer.name}: beta = {beta:g} dropped (beta-free Mostafa inference)")
        if temporal_node == "cuba_lif":
            approximations.append(
                f"{layer.name}: leak-free membrane written as CubaLIF with tau_mem = {tau_mem:g} "
                "(relative spike-time error ~ t/tau_mem)"
            )
    return approximations


def check_nir(
    description: SpikingDescription,
    approximate_reset: bool = False,
    drop_beta: bool = False,
    temporal_node: str = "cuba_lif",
    tau_mem: float = TEMPORAL_TAU_MEM,
) -> list[str]:
    """Raise :class:`UnsupportedNetworkError` for what NIR cannot express; return the approximations made.

    :param description: the network
    :param approximate_reset: write reset-by-subtraction populations as reset-to-zero instead of refusing
    :param drop_beta: write temporal (CVTC) layers with ``beta != 0`` as beta-free instead of refusing
    :param temporal_node: ``"cuba_lif"`` or ``"li_if"`` (see the module docstring)
    :param tau_mem: the CubaLIF membrane constant for ``"cuba_lif"``
    """
    if description.is_temporal:
        return check_temporal(description, drop_beta, temporal_node, tau_mem)
    approximations = []
    if description.encoding.get("kind") not in ("analog", "frames"):
        raise UnsupportedNetworkError(
            "network",
            f"the {description.encoding.get('kind')!r} encoding",
            "NIR graphs take a per-step input; only analog and frame inputs are described",
            "nir",
        )
    for layer in description.layers:
        neuron = layer.neuron
        if neuron is None:
            continue
        if neuron.model in ("IF", "LIF") and neuron.reset == "subtract":
            if not approximate_reset:
                raise UnsupportedNetworkError(
                    layer.name,
                    "reset by subtraction",
                    "NIR has no reset by subtraction (IF/LIF nodes reset to v_reset); pass approximate_reset=True "
                    "(CLI: --set approximate_reset=true) to write a reset to 0 instead, which changes the network",
                    "nir",
                )
            approximations.append(f"{layer.name}: reset by subtraction written as reset to 0")
        if neuron.decay != 1.0 and not 0 < neuron.decay < 1:
            raise UnsupportedNetworkError(layer.name, f"decay {neuron.decay}", "decay must lie in (0, 1]", "nir")
    return approximations


def _graph_metadata(description: SpikingDescription, dt: float | None, approximations: list[str]) -> dict[str, Any]:
    """What the graph's ``sb3_snn`` metadata says of every network: format, time step, input, encoding, time steps,
    readout, actions, approximations made and the layers' shapes.

    :param description: the network written
    :param dt: the discrete time step (``None`` for a temporal network's continuous time)
    :param approximations: what the graph does not express exactly, in words
    """
    return {
        "format": "sb3-snn/nir-metadata",
        "dt": dt,
        "input_shape": list(description.input_shape),
        "encoding": description.encoding,
        "timesteps": description.timesteps,
        "readout": description.readout,
        "n_actions": description.n_actions,
        "approximations": approximations,
        "layer_shapes": {layer.name: [list(layer.input_shape), list(layer.output_shape)] for layer in description.layers},
    }


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
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(neuron.threshold), v_reset=full(reset))


def step_input_shape(description: SpikingDescription) -> tuple[int, ...]:
    """Shape of the network's input at one step (a frame stack feeds one frame per step)."""
    shape = list(description.input_shape)
    if description.encoding.get("kind") == "frames":
        shape[int(description.encoding.get("frame_axis", 0))] = 1
    return tuple(shape)


def _temporal_to_nir(
    nir: Any, description: SpikingDescription, approximations: list[str], temporal_node: str, tau_mem: float
) -> Any:
    first = description.layers[0]
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(first.input_shape))}
    edges, previous, layers_meta = [], "input", {}
    for layer in description.layers:
        population = layer.neuron
        assert population is not None  # every layer of a temporal network has temporal neurons
        shape = tuple(layer.output_shape)
        full = lambda value, shape=shape: np.full(shape, float(value))  # noqa: E731
        nodes[layer.name] = nir.Linear(weight=np.asarray(layer.weight, dtype=np.float64))
        edges.append((previous, layer.name))
        previous = layer.name
        if temporal_node == "li_if":
            nodes[f"{layer.name}_synapse"] = nir.LI(tau=full(1.0), r=full(1.0), v_leak=full(0.0))
            edges.append((previous, f"{layer.name}_synapse"))
            previous = f"{layer.name}_synapse"
            neuron = nir.IF(r=full(1.0), v_threshold=full(population.threshold), v_reset=full(TEMPORAL_V_RESET))
        else:
            neuron = nir.CubaLIF(
                tau_syn=full(1.0),
                tau_mem=full(tau_mem),
                r=full(tau_mem),
                v_leak=full(0.0),
                v_threshold=full(population.threshold),
                v_reset=full(TEMPORAL_V_RESET),
                w_in=1.0,
            )
        nodes[f"{layer.name}_neuron"] = neuron
        edges.append((previous, f"{layer.name}_neuron"))
        previous = f"{layer.name}_neuron"
        params = dict(population.params or {})
        layers_meta[layer.name] = {
            "threshold": population.threshold,
            "z_never": params.get("z_never"),
            "beta_written": 0.0,
            "beta_description": float(params.get("beta", 0.0)),
            "beta_training": params.get("beta_training"),
        }
    nodes["output"] = nir.Output(output_type=np.array(description.layers[-1].output_shape))
    edges.append((previous, "output"))
    extra = {
        **_graph_metadata(description, None, approximations),
        "temporal": {
            "semantics": "time-to-first-spike (CVTC / Mostafa 2017, beta-free): continuous time in units of tau_syn = 1; "
            "each neuron spikes at most once (its first threshold crossing); a neuron silent until "
            "t = ln(z_never) counts as spiking then",
            "node": temporal_node,
            "tau_mem": tau_mem if temporal_node == "cuba_lif" else None,
            "v_reset": TEMPORAL_V_RESET,
            "input": "one spike per input neuron at t_i = ln(z_i); z = the population encoder's output "
            "(metadata encoding, run on the host: observation -> spike times)",
            "readout": "Q[a] = q_sign * exp(t_out[a]) (z-domain output spike time); action = argmax Q",
            "layers": layers_meta,
        },
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"sb3_snn": json.dumps(extra)})


def to_nir(
    description: SpikingDescription,
    dt: float = DEFAULT_DT,
    approximate_reset: bool = False,
    drop_beta: bool = False,
    temporal_node: str = "cuba_lif",
    tau_mem: float = TEMPORAL_TAU_MEM,
) -> Any:
    """The description as a ``nir.NIRGraph`` (nodes ``input``, per layer ``<name>`` and ``<name>_neuron``, ``output``).

    :param description: the network
    :param dt: the time step a reader should discretise with (only the ratios in the table above matter;
        unused by temporal networks, which are written in continuous time)
    :param approximate_reset: see :func:`check_nir`
    :param drop_beta: see :func:`check_nir`
    :param temporal_node: see :func:`check_nir`
    :param tau_mem: see :func:`check_nir`
    """
    nir = _require_nir()
    approximations = check_nir(description, approximate_reset, drop_beta, temporal_node, tau_mem)
    if description.is_temporal:
        return _temporal_to_nir(nir, description, approximations, temporal_node, tau_mem)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(step_input_shape(description)))}
    edges, previous = [], "input"
    for layer in description.layers:
        if layer.kind == "flatten":
            node = nir.Flatten(input_type=np.array(layer.input_shape), start_dim=0, end_dim=-1)
        elif layer.kind == "linear":
            weight = np.asarray(layer.weight, dtype=np.float64)
            node = (
                nir.Linear(weight=weight)
                if layer.bias is None
                else nir.Affine(weight=weight, bias=np.asarray(layer.bias, dtype=np.float64))
            )
        else:
            assert layer.weight is not None  # a convolution
            bias = np.zeros(layer.weight.shape[0]) if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
            node = nir.Conv2d(
                input_shape=tuple(layer.input_shape[1:]),
                weight=np.asarray(layer.weight, dtype=np.float64),
                stride=tuple(layer.stride),
                padding=tuple(layer.padding),
                dilation=(1, 1),
                groups=1,
                bias=bias,
            )
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
    extra = _graph_metadata(description, dt, approximations)
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
    if "temporal" in meta:
        return _temporal_from_nir(nir, graph, meta)
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
            layers.append(
                Layer(name, "linear", in_shape, out_shape, np.asarray(node.weight), getattr(node, "bias", None), neuron=neuron)
            )
        elif isinstance(node, nir.Conv2d):
            layers.append(
                Layer(
                    name,
                    "conv2d",
                    in_shape,
                    out_shape,
                    np.asarray(node.weight),
                    np.asarray(node.bias),
                    stride=_pair(node.stride),
                    padding=_pair(node.padding),
                    neuron=neuron,
                )
            )
        else:
            raise ValueError(f"node {name!r}: unexpected NIR node {type(node).__name__}")
        name = after
    return SpikingDescription(
        layers,
        tuple(meta["input_shape"]),
        meta["encoding"],
        int(meta["timesteps"]),
        meta["readout"],
        int(meta["n_actions"]),
        metadata={"source": "nir", "dt": dt},
    )


def _temporal_from_nir(nir: Any, graph: Any, meta: dict[str, Any]) -> SpikingDescription:
    following = dict(graph.edges)
    layers: list[Layer] = []
    name = following["input"]
    while name != "output":
        node = graph.nodes[name]
        if not isinstance(node, nir.Linear):
            raise ValueError(f"node {name!r}: expected a NIR Linear node, got {type(node).__name__}")
        after = following[name]
        if after == f"{name}_synapse":
            after = following[after]
        cell = graph.nodes[after]
        if not isinstance(cell, (nir.CubaLIF, nir.IF)):
            raise ValueError(f"node {after!r}: expected CubaLIF or IF, got {type(cell).__name__}")
        info = meta["temporal"]["layers"][name]
        params = {
            "beta": 0.0,
            "beta_training": info.get("beta_training"),
            "tau_syn": 1.0,
            "domain": "z",
            "spikes_per_neuron": 1,
            "z_never": info.get("z_never"),
        }
        in_shape, out_shape = meta["layer_shapes"][name]
        layers.append(
            Layer(
                name,
                "linear",
                in_shape,
                out_shape,
                np.asarray(node.weight),
                None,
                neuron=NeuronPopulation(
                    "temporal", threshold=_uniform(cell.v_threshold, "v_threshold"), decay=1.0, reset="none", params=params
                ),
            )
        )
        name = following[after]
    return SpikingDescription(
        layers,
        tuple(meta["input_shape"]),
        meta["encoding"],
        int(meta["timesteps"]),
        meta["readout"],
        int(meta["n_actions"]),
        metadata={"source": "nir", "inference": "mostafa", "node": meta["temporal"]["node"]},
    )


def _actions(description: SpikingDescription, obs: np.ndarray) -> np.ndarray:
    """Greedy actions of the reference simulation (exact spike times for a temporal network)."""
    return simulate(description, obs).actions


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
        return NeuronPopulation(
            "LIF", threshold=threshold, decay=1.0 - dt / _uniform(node.tau, "LIF.tau"), reset="zero", reset_value=reset
        )
    raise ValueError(f"unexpected NIR neuron node {type(node).__name__}")


class NIRDeployment(Deployment):
    """A NIR graph plus the description it came from.

    :param graph: the ``nir.NIRGraph``
    :param description: the original description
    :param approximations: what was approximated (empty: exact)
    :param dt: the time step written into the graph's constants
    :param calibration: agreement of the graph's network with the original, on the example observations
    :param action_rate_hz: actions per second the deployment is meant for (recorded, ``None``: not given)
    """

    backend_name = "nir"

    def __init__(
        self,
        graph: Any,
        description: SpikingDescription,
        approximations: list[str],
        dt: float,
        calibration: dict[str, Any],
        action_rate_hz: float | None = None,
    ) -> None:
        super().__init__(description)
        self.graph, self.approximations, self.dt, self.calibration = graph, approximations, dt, calibration
        self.action_rate_hz = action_rate_hz
        self.exported = from_nir(graph)

    def _run_batch(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions of the network the NIR graph describes (float reference simulation)."""
        return _actions(self.exported, obs)

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
        summary = ReportSection(
            "summary",
            ["quantity", "value"],
            [
                ["nodes", len(self.graph.nodes)],
                ["edges", len(self.graph.edges)],
                ["dt", self.dt],
                ["exact", not self.approximations],
                ["agreement with original", self.calibration.get("agreement")],
                ["example observations", self.calibration.get("n_obs")],
                ["actions per second", "-" if self.action_rate_hz is None else self.action_rate_hz],
            ],
        )
        notes = [f"approximation: {a}" for a in self.approximations]
        if self.description.is_temporal:
            notes.append(
                "time-to-first-spike (CVTC, beta-free) graph in continuous time (unit tau_syn = 1): input = spike "
                "times t = ln(z) from the population encoder, which runs on the host (constants in "
                "metadata['sb3_snn']['encoding']); each neuron's first spike only; readout Q = q_sign * exp(t_out), "
                "argmax; see metadata['sb3_snn']['temporal']"
            )
        else:
            notes.append(
                f"neuron constants assume a reader discretising with dt={self.dt:g} (forward Euler); "
                "readout, encoding and time steps are in metadata['sb3_snn']"
            )
        if self.action_rate_hz is not None:
            notes.append(
                f"actions per second ({self.action_rate_hz:g}) recorded for the toolchain that runs the graph; "
                "NIR carries no cost model"
            )
        metrics: dict[str, float] = {}
        if self.calibration.get("agreement") is not None:
            metrics["agreement"] = float(self.calibration["agreement"])
        if self.action_rate_hz is not None:
            metrics[COST_CONTEXT] = float(self.action_rate_hz)
        return BackendReport(
            "nir",
            describe_network(self.description),
            [summary, ReportSection("nodes", ["node", "type", "shape", "parameters"], rows)],
            notes,
            metrics,
        )

    def save(self, path: str | Path) -> Path:
        """Write the deployment; returns what was written (the ``.nir`` file, or the folder).

        * ``path`` ending in ``.nir`` (``deployment.save("student.nir")``): the NIR graph at that path, as
          ``nir.write`` writes it (what other toolchains read), and the sidecar ``student.nir.json`` beside
          it (:data:`SIDECAR_SUFFIX`): the graph's SHA-256, the policy kind, the observation preprocessing
          and input encoding, the time steps, the action readout, the approximations, the agreement figure
          and the original network's neuron parameters (its weights are the graph's); JSON only.
        * any other ``path`` (no suffix, or an existing folder): an artifact folder with ``model.nir``,
          ``deployment.json`` (checksums) and the original description (``description/``), what
          ``sb3-snn export --out FOLDER`` writes.

        :param path: a ``.nir`` file path or a folder
        :raises ValueError: ``path`` has another suffix (neither a ``.nir`` file nor a folder) or is an
            existing folder named ``*.nir``
        """
        nir = _require_nir()
        target = Path(path)
        if target.suffix == GRAPH_SUFFIX and not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            nir.write(target, self.graph)
            sidecar = {
                "format": SIDECAR_FORMAT,
                "format_version": SIDECAR_VERSION,
                "backend": "nir",
                "graph": target.name,
                "graph_sha256": _sha256(target),
                **self._document(),
                **sidecar_summary(self.description),
                "description": _description_record(self.description),
            }
            sidecar["checksum"] = _document_checksum(sidecar)
            sidecar_path(target).write_text(json.dumps(sidecar, indent=2, default=_json_default))
            return target
        if target.suffix and not target.is_dir():
            raise ValueError(
                f"nir deployment save({str(path)!r}): expected a file path ending in {GRAPH_SUFFIX!r} "
                f"(the graph + a {SIDECAR_SUFFIX!r} sidecar) or a folder (an artifact folder), got the "
                f"suffix {target.suffix!r}"
            )
        if target.suffix == GRAPH_SUFFIX:
            raise ValueError(
                f"nir deployment save({str(path)!r}): a folder named *{GRAPH_SUFFIX} exists there; "
                f"remove it or choose another path"
            )
        target.mkdir(parents=True, exist_ok=True)
        nir.write(target / GRAPH_FILE, self.graph)
        document = {"backend": "nir", **self._document(), "graph": GRAPH_FILE}
        return write_artifact(
            target,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            document=document,
            arrays={},
            description=self.description,
            extra_files=(GRAPH_FILE,),
        )

    def _document(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "approximations": self.approximations,
            "calibration": self.calibration,
            COST_CONTEXT: self.action_rate_hz,
        }


def sidecar_path(graph_path: str | Path) -> Path:
    """The metadata file written beside a ``.nir`` graph by :meth:`NIRDeployment.save` (``x.nir`` -> ``x.nir.json``).

    :param graph_path: the ``.nir`` file
    """
    graph_path = Path(graph_path)
    return graph_path.with_name(graph_path.name + SIDECAR_SUFFIX)


def policy_kind(description: SpikingDescription) -> str:
    """What kind of spiking policy a description is: ``"cvtc"`` (time-to-first-spike), ``"converted"``
    (conversion), ``"sdn"`` (a distilled student), else the method its metadata names, else ``"unknown"``.

    :param description: the network
    """
    if description.is_temporal:
        return "cvtc"
    method = str(description.metadata.get("method", "")).lower()
    if method.startswith("conver"):
        return "converted"
    if "sdn" in method or "distil" in method:
        return "sdn"
    return method or "unknown"


def sidecar_summary(description: SpikingDescription) -> dict[str, Any]:
    """The sidecar's description of how to drive the graph: kind, preprocessing, encoding, steps, readout.

    :param description: the original network
    """
    neurons = sorted({layer.neuron.model for layer in description.layers if layer.neuron is not None})
    return {
        "policy_kind": policy_kind(description),
        "neurons": neurons,
        "observation_preprocessing": description.metadata.get("preprocessing")
        or (
            "raw observation; the population encoder (encoding) runs on the host"
            if description.is_temporal
            else "the observation as the policy's network takes it (SB3's preprocess_obs)"
        ),
        "input_shape": list(description.input_shape),
        "encoding": description.encoding,
        "timesteps": description.timesteps,
        "readout": description.readout,
        "n_actions": description.n_actions,
    }


def _description_record(description: SpikingDescription) -> dict[str, Any]:
    """The description without its arrays (the graph holds the weights): layers, neurons, metadata."""
    layers = []
    for layer in description.layers:
        record = asdict(layer)
        record["weight"] = None if layer.weight is None else "graph"
        record["bias"] = None if layer.bias is None else "graph"
        layers.append(record)
    return {"layers": layers, "metadata": description.metadata}


def _description_from_record(
    record: dict[str, Any], summary: dict[str, Any], exported: SpikingDescription
) -> SpikingDescription:
    """The original description: the sidecar's layers and neurons with the weights of the graph's network."""
    weights = {layer.name: layer for layer in exported.layers}
    layers = []
    for entry in record["layers"]:
        entry = dict(entry)
        source = weights.get(entry["name"])
        if source is None:
            raise ArtifactError(f"the sidecar names layer {entry['name']!r}, which the graph does not have")
        entry["weight"] = None if entry["weight"] is None else source.weight
        entry["bias"] = None if entry["bias"] is None else source.bias
        neuron = entry.pop("neuron")
        layers.append(Layer(**entry, neuron=NeuronPopulation(**neuron) if neuron else None))
    return SpikingDescription(
        layers,
        tuple(summary["input_shape"]),
        summary["encoding"],
        int(summary["timesteps"]),
        summary["readout"],
        int(summary["n_actions"]),
        metadata=record.get("metadata", {}),
    )


def _check_dt(dt: Any) -> float:
    """``dt`` as a float, or a ``ValueError`` naming the option: the constants divide by it (``r = 1/dt``)."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0 or dt == float("inf"):
        raise ValueError(f"nir backend option dt={dt!r}: the time step must be a finite number > 0 (default {DEFAULT_DT:g})")
    return float(dt)


class NIRBackend(Backend):
    """The ``nir`` backend: a NIR graph file for other neuromorphic toolchains (Lava, Xylo, Speck, spikingjelly, ...).

    :param dt: the time step the NIR constants are written for
    :param approximate_reset: write reset-by-subtraction as reset-to-zero instead of refusing
    :param drop_beta: write CVTC layers with ``beta != 0`` as beta-free instead of refusing
    :param temporal_node: ``"cuba_lif"`` (default) or ``"li_if"`` (exact), for CVTC layers
    :param tau_mem: the CubaLIF membrane constant standing in for "no leak" (``temporal_node="cuba_lif"``)
    """

    name = "nir"

    def __init__(
        self,
        dt: float = DEFAULT_DT,
        approximate_reset: bool = False,
        drop_beta: bool = False,
        temporal_node: str = "cuba_lif",
        tau_mem: float = TEMPORAL_TAU_MEM,
    ) -> None:
        self.dt, self.approximate_reset = _check_dt(dt), approximate_reset
        self.drop_beta, self.temporal_node, self.tau_mem = drop_beta, temporal_node, tau_mem

    def build(  # type: ignore[override]  # compile() accepts exactly the options named here
        self,
        description: SpikingDescription,
        example_obs: np.ndarray,
        *,
        action_rate_hz: float | None = None,
        approximate_reset: bool | None = None,
        dt: float | None = None,
        drop_beta: bool | None = None,
        temporal_node: str | None = None,
        tau_mem: float | None = None,
    ) -> NIRDeployment:
        """Check that NIR can express the network, build the graph, and compare it with the original.

        :param description: the network
        :param example_obs: ``[batch, *input_shape]`` observations for the agreement figure
        :param action_rate_hz: actions per second, recorded in the report and the artifact
        :param approximate_reset: overrides the backend's setting
        :param dt: overrides the backend's setting
        :param drop_beta: overrides the backend's setting
        :param temporal_node: overrides the backend's setting
        :param tau_mem: overrides the backend's setting
        :raises UnsupportedNetworkError: reset by subtraction (without the flag), temporal neurons with
            ``beta != 0`` (without ``drop_beta``)
        :raises ValueError: ``dt`` is not a number > 0
        """
        dt = self.dt if dt is None else _check_dt(dt)
        approx = self.approximate_reset if approximate_reset is None else approximate_reset
        options: dict[str, Any] = {
            "drop_beta": self.drop_beta if drop_beta is None else bool(drop_beta),
            "temporal_node": self.temporal_node if temporal_node is None else temporal_node,
            "tau_mem": self.tau_mem if tau_mem is None else float(tau_mem),
        }
        approximations = check_nir(description, approx, **options)
        graph = to_nir(description, dt=dt, approximate_reset=approx, **options)
        deployment = NIRDeployment(graph, description, approximations, dt, {}, action_rate_hz)
        example_obs = np.asarray(example_obs, dtype=np.float64)
        reference = _actions(description, example_obs)
        deployment.calibration = {"n_obs": len(example_obs), "agreement": agreement(deployment.run(example_obs), reference)}
        return deployment

    def load_deployment(self, path: str | Path) -> NIRDeployment:
        """Read what :meth:`NIRDeployment.save` wrote: a ``.nir`` file with its ``.nir.json`` sidecar, or an
        artifact folder; checksums verified, JSON and HDF5 only (no pickle).

        :param path: the ``.nir`` file or the folder
        :raises ArtifactError: a missing or modified sidecar or graph, another format or version
        """
        nir = _require_nir()
        target = Path(path)
        if target.is_dir():
            document, _, description = read_artifact(target, format=FORMAT, format_version=FORMAT_VERSION)
            graph = nir.read(target / document["graph"])
            return NIRDeployment(
                graph,
                description,
                document["approximations"],
                document["dt"],
                document["calibration"],
                document.get(COST_CONTEXT),
            )
        document = _read_sidecar(target)
        graph = nir.read(target)
        description = _description_from_record(document["description"], document, from_nir(graph))
        return NIRDeployment(
            graph, description, document["approximations"], document["dt"], document["calibration"], document.get(COST_CONTEXT)
        )


def _read_sidecar(graph_path: Path) -> dict[str, Any]:
    """The verified sidecar of a ``.nir`` file (its own checksum and the graph's SHA-256)."""
    side = sidecar_path(graph_path)
    if not graph_path.is_file():
        raise ArtifactError(f"{graph_path}: no such NIR file or artifact folder")
    if not side.is_file():
        raise ArtifactError(
            f"{graph_path}: no sidecar {side.name} beside it (written by deployment.save); a bare "
            f"graph written by sb3-snn is read with sb3_snn.backends.nir_backend.from_nir"
        )
    try:
        document = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{side}: corrupted ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != SIDECAR_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ArtifactError(f"{side}: format {found!r} is not {SIDECAR_FORMAT!r}")
    if document.get("format_version") != SIDECAR_VERSION:
        raise ArtifactError(
            f"{side}: format version {document.get('format_version')!r} is not supported "
            f"(this version reads {SIDECAR_VERSION})"
        )
    if document.get("checksum") != _document_checksum(document):
        raise ArtifactError(f"{side}: checksum mismatch: the document was modified (tampered or corrupted)")
    if _sha256(graph_path) != document.get("graph_sha256"):
        raise ArtifactError(f"{graph_path}: checksum mismatch: the file was modified (tampered or corrupted)")
    return document


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
    state: Any = None  # spikingjelly's per-node state, from the first step on
    summed = None
    with th.no_grad():
        for step in range(description.timesteps):
            out, state = module(encode_step(description, x_obs, step), state)
            summed = out.clone() if summed is None else summed + out
    assert summed is not None, "a description runs for at least one time step"
    steps, scale = description.timesteps, float(description.readout.get("scale", 1.0))
    kind = description.readout["kind"]
    if kind in ("rate", "membrane_mean"):
        return (scale * summed / steps).numpy()
    v = state[f"{last.name}_neuron"][0]
    if kind == "robust":
        assert last.neuron is not None  # the robust readout reads the last layer's neurons
        return (scale * (summed / steps + v / (steps * last.neuron.threshold))).numpy()
    return (scale * v).numpy()

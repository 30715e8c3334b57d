"""Run a NIR graph written by the ``nir`` backend in another SNN framework, and read out its actions.

:func:`run_with` imports a graph (a ``.nir`` file or a ``nir.NIRGraph``) with the framework's own NIR
importer, runs it on observations with the encoding and time steps the graph's ``metadata["sb3_snn"]``
records, and returns the greedy actions, so that a deployment's agreement can be measured in each
framework users deploy through (:data:`FRAMEWORKS`; each imported lazily, ``pip install 'sb3-snn[interchange]'``).

What the adapter does around each importer, and why (every step keeps the network the graph describes):

* **Batch dimension.** A NIR ``Flatten`` has no batch axis (``start_dim = 0``); the importers build
  ``torch.nn.Flatten(start_dim, end_dim)`` verbatim, which would flatten the batch too, so the adapter
  shifts a non-negative ``start_dim``/``end_dim`` by one before importing.
* **Action readout.** The readout (rate plus leftover membrane, membrane mean, last membrane) needs the
  output population's spikes and membrane, which no importer exposes the same way, and the SDN
  student's non-spiking readout (NIR ``LI``/``I``) has no node in either framework. Like the input
  encoding, the readout runs on the host: the framework runs every node from the input up to the last
  synaptic layer, whose current the adapter integrates with the output population's NIR node
  (:func:`sb3_snn.backends.nir_backend.from_nir` reads its constants), then applies the readout rule of
  :func:`sb3_snn.spiking.simulate`. A time-to-first-spike (CVTC) graph runs whole in the framework; its
  readout is the output neurons' first spike steps.
* **norse** (``norse.torch.from_nir``): ``IF`` becomes ``IAFCell`` (``v += I``, no ``r``, no ``dt``) and
  ``LIF`` becomes ``LIFBoxCell`` (``v += dt/tau (v_leak - v + I)``, no ``r``); the importer drops ``r``
  (with a warning), so the adapter folds the gain (``dt * r`` for ``IF``, ``r`` for ``LIF``) into the
  weights and bias of the synaptic node before it and writes ``r`` as the value norse assumes. ``dt`` is
  the graph's own (``metadata["sb3_snn"]["dt"]``). ``CubaLIF`` becomes ``w_in * x`` -> ``LIBoxCell``
  (synaptic current) -> ``r *`` -> ``LIFBoxCell``, integrated by forward Euler with the adapter's
  ``temporal_dt``; norse passes spikes as unit events where NIR means Dirac deltas, so the adapter
  divides ``w_in`` by ``temporal_dt``; the importer gives no ``v_reset`` to the cell (it resets to 0 and
  fires again), so the adapter sets the graph's ``v_reset`` (each neuron fires once) on the imported cells.
* **snnTorch** (``snntorch.import_nir.import_from_nir``): ``LIF`` becomes ``Leaky(beta = 1 - dt_s/tau,
  reset_mechanism="zero")`` with the importer's fixed ``dt_s`` = :data:`SNNTORCH_DT`; the adapter
  rescales the graph's time constants to that time step (a change of time unit: ``r dt / tau`` is
  unchanged). snnTorch resets to 0 whatever ``v_reset`` says, so a graph with ``v_reset != 0`` is refused.

What a framework cannot express (:data:`UNSUPPORTED`, raised as
:class:`~sb3_snn.backends.base.UnsupportedNetworkError` naming the node, its NIR type and the framework):
snnTorch's importer builds a *leaky* ``Leaky(beta = 0.9)`` for NIR ``IF`` and asserts ``r == 1`` (so the
converted DQN, IF neurons, does not run there), and its ``CubaLIF`` asserts ``r == tau_mem / dt_s`` and
resets to 0 (so a CVTC graph, each neuron firing once, does not either); neither framework maps NIR ``LI``
or ``I`` in a hidden layer.

The CVTC input is one spike per input neuron at ``t_i = ln(z_i)`` (the population encoder, on the host);
the adapter delivers it in step ``floor(t_i / temporal_dt)`` and reads an output spike in step ``k`` as
``t = (k + 1) temporal_dt``; an output silent until ``ln(z_never)`` counts as firing then (the graph's
metadata), ``Q = q_sign * exp(t)``. A hidden neuron that never fires is, in the exact model, an input
spike at ``z_never``; a stepped simulation has no such event, so a CVTC graph agrees to the resolution
``temporal_dt`` and up to those late events, not exactly.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends.base import UnsupportedNetworkError
from sb3_snn.spiking.description import SpikingDescription

#: The frameworks :func:`run_with` runs a graph in.
FRAMEWORKS = ("norse", "snntorch")
#: The time step snnTorch's NIR importer discretises with (fixed in its code, not an argument).
SNNTORCH_DT = 1e-4
#: The default resolution of a CVTC graph's stepped simulation (graph time unit: tau_syn = 1).
DEFAULT_TEMPORAL_DT = 1e-3

#: NIR node types that a framework's importer cannot run as the graph means them, with the reason.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "snntorch": {
        "IF": "snnTorch's NIR importer builds a leaky neuron (snntorch.Leaky, beta = 0.9) for NIR IF and requires r = 1",
        "CubaLIF": "snnTorch's NIR importer requires r = tau_mem / dt with its fixed dt = 1e-4 and resets "
        "to 0 after a spike (a time-to-first-spike graph's v_reset, one spike per neuron, is lost)",
        "LI": "snnTorch's NIR importer has no mapping for NIR LI",
        "I": "snnTorch's NIR importer has no mapping for NIR I",
    },
    "norse": {
        "LI": "norse's NIR importer has no mapping for NIR LI (it leaves the node out of the module without an error)",
        "I": "norse's NIR importer has no mapping for NIR I (it leaves the node out of the module without an error)",
    },
}
_INSTALL = "pip install 'sb3-snn[interchange]'"
_NEURONS = ("IF", "LIF", "LI", "I", "CubaLIF")


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework {framework!r} is not supported by the NIR interchange; allowed: {', '.join(FRAMEWORKS)}")


def _import_framework(framework: str) -> Any:
    _check_framework(framework)
    try:
        if framework == "norse":
            import norse.torch as module
        else:
            import snntorch.import_nir as module
    except ImportError as exc:
        raise ImportError(f"running a NIR graph with {framework} needs the {framework} package: {_INSTALL}") from exc
    return module


def is_installed(framework: str) -> bool:
    """Whether ``framework`` (one of :data:`FRAMEWORKS`) can be imported here.

    :param framework: the framework's name
    :raises ValueError: an unknown framework
    """
    _check_framework(framework)
    try:
        _import_framework(framework)
    except ImportError:
        return False
    return True


def _read(graph: Any) -> tuple[Any, dict[str, Any]]:
    import nir

    if isinstance(graph, (str, Path)):
        graph = nir.read(graph)
    raw = graph.metadata.get("sb3_snn") if isinstance(graph.metadata, dict) else None
    if raw is None:
        raise ValueError(
            "this NIR graph was not written by sb3-snn (no metadata['sb3_snn']): its input encoding, "
            "time steps and action readout are unknown"
        )
    return graph, json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def check_supported(framework: str, graph: Any) -> None:
    """Raise :class:`UnsupportedNetworkError` for the first node ``framework`` cannot run as the graph means it.

    The output population of a discrete-time graph is not checked: the adapter evaluates it on the host.

    :param framework: one of :data:`FRAMEWORKS`
    :param graph: a ``nir.NIRGraph`` written by the ``nir`` backend, or the path of its ``.nir`` file
    :raises ValueError: an unknown framework
    """
    _check_framework(framework)
    graph, meta = _read(graph)
    host = None if "temporal" in meta else _output_population(graph)
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if name == host:
            continue
        reason = UNSUPPORTED[framework].get(kind)
        if reason is not None:
            raise UnsupportedNetworkError(name, f"NIR {kind}", reason, framework)
        if framework == "snntorch" and kind == "LIF" and np.any(np.asarray(node.v_reset) != 0):
            raise UnsupportedNetworkError(
                name, "NIR LIF with v_reset != 0", "snnTorch's Leaky resets to 0 whatever v_reset says", framework
            )


def _output_population(graph: Any) -> str | None:
    """The neuron node feeding ``output`` (evaluated on the host), or ``None``."""
    before = [source for source, target in graph.edges if target == "output"]
    if len(before) != 1:
        raise ValueError(f"expected one edge into the output node, got {len(before)}")
    return before[0] if type(graph.nodes[before[0]]).__name__ in _NEURONS else None


def _shift_flatten(nir: Any, node: Any) -> Any:
    """A NIR ``Flatten`` (no batch axis) as a torch importer must see it to keep a leading batch axis."""
    start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
    end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
    return nir.Flatten(input_type=node.input_type, start_dim=start, end_dim=end)


def _fold_gain(nir: Any, nodes: dict[str, Any], synapse: str, gain: np.ndarray) -> None:
    """Multiply the synaptic node ``synapse``'s outputs by ``gain`` (per output neuron): weight and bias."""
    node = nodes[synapse]
    gain = np.asarray(gain, dtype=np.float64)
    if isinstance(node, nir.Affine):
        nodes[synapse] = nir.Affine(weight=node.weight * gain.reshape(-1, 1), bias=node.bias * gain)
    elif isinstance(node, nir.Linear):
        nodes[synapse] = nir.Linear(weight=node.weight * gain.reshape(-1, 1))
    elif isinstance(node, nir.Conv2d):
        channel = gain.reshape(gain.shape[0], -1)[:, 0]  # one value per output channel (uniform per layer)
        nodes[synapse] = nir.Conv2d(
            input_shape=node.input_shape,
            weight=node.weight * channel.reshape(-1, 1, 1, 1),
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
            groups=node.groups,
            bias=node.bias * channel,
        )
    else:
        raise ValueError(f"node {synapse!r}: cannot fold a gain into a NIR {type(node).__name__}")


def _adapted(framework: str, graph: Any, meta: dict[str, Any], temporal_dt: float) -> Any:
    """The graph rewritten for ``framework``'s importer (same network; see the module docstring)."""
    import nir

    nodes, edges = dict(graph.nodes), [tuple(edge) for edge in graph.edges]
    temporal = "temporal" in meta
    if not temporal:
        host = _output_population(graph)
        if host is not None:  # the host integrates the output population
            (synapse,) = [source for source, target in edges if target == host]
            edges = [edge for edge in edges if host not in edge] + [(synapse, "output")]
            del nodes[host]
            shape = np.asarray(graph.nodes["output"].output_type["output"])
            nodes["output"] = nir.Output(output_type=shape)
    preceding = {target: source for source, target in edges}
    dt = None if temporal else float(meta["dt"])
    for name, node in list(nodes.items()):
        if isinstance(node, nir.Flatten):
            nodes[name] = _shift_flatten(nir, node)
        elif framework == "norse" and isinstance(node, nir.IF):
            assert dt is not None  # IF nodes only appear in discrete-time graphs
            _fold_gain(nir, nodes, preceding[name], dt * np.asarray(node.r))
            nodes[name] = nir.IF(r=np.ones_like(node.r), v_threshold=node.v_threshold, v_reset=node.v_reset)
        elif framework == "norse" and isinstance(node, nir.LIF):
            _fold_gain(nir, nodes, preceding[name], np.asarray(node.r))
            nodes[name] = nir.LIF(
                tau=node.tau, r=np.ones_like(node.r), v_leak=node.v_leak, v_threshold=node.v_threshold, v_reset=node.v_reset
            )
        elif framework == "norse" and isinstance(node, nir.CubaLIF):
            nodes[name] = nir.CubaLIF(
                tau_syn=node.tau_syn,
                tau_mem=node.tau_mem,
                r=node.r,
                v_leak=node.v_leak,
                v_threshold=node.v_threshold,
                v_reset=node.v_reset,
                w_in=np.asarray(node.w_in) / temporal_dt,
            )
        elif framework == "snntorch" and isinstance(node, nir.LIF):
            assert dt is not None
            scale = SNNTORCH_DT / dt  # the graph's time unit rescaled to snnTorch's fixed dt
            nodes[name] = nir.LIF(
                tau=np.asarray(node.tau) * scale,
                r=node.r,
                v_leak=node.v_leak,
                v_threshold=node.v_threshold,
                v_reset=node.v_reset,
            )
    # no type check: a shifted Flatten is in the importers' batched convention, which NIR's batch-free types do not know
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata), type_check=False)


def _import(framework: str, graph: Any, meta: dict[str, Any], temporal_dt: float) -> Any:
    """The framework's module for ``graph`` (already adapted)."""
    module = _import_framework(framework)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):  # snnTorch's importer prints progress and warnings
        if framework == "snntorch":
            return module.import_from_nir(graph)
        imported = module.from_nir(graph, dt=float(temporal_dt if "temporal" in meta else meta["dt"]), ignore_warnings=True)
    if "temporal" in meta:
        import torch as th

        for name, node in graph.nodes.items():
            if type(node).__name__ == "CubaLIF":  # the importer leaves the cell's v_reset at 0
                cell = imported.get_submodule(name).lif
                cell.p = cell.p._replace(v_reset=th.as_tensor(np.asarray(node.v_reset), dtype=th.float32))
    return imported


class _Stepper:
    """Calls an imported module one time step at a time, keeping its state as the framework does."""

    def __init__(self, framework: str, module: Any) -> None:
        self.framework, self.module, self.state = framework, module, None

    def __call__(self, x: Any) -> Any:
        out = self.module(x) if self.framework == "snntorch" and self.state is None else self.module(x, self.state)
        if isinstance(out, tuple):
            out, state = out
            if self.framework == "norse":
                self.state = state
        return out


def _discrete_outputs(framework: str, graph: Any, meta: dict[str, Any], obs: np.ndarray) -> np.ndarray:
    import torch as th

    from sb3_snn.backends.nir_backend import from_nir
    from sb3_snn.spiking.simulate import encode_step, neuron_step, readout_values

    description: SpikingDescription = from_nir(graph)
    host = _output_population(graph)
    step = _Stepper(framework, _import(framework, _adapted(framework, graph, meta, 0.0), meta, 0.0))
    last = description.layers[-1]
    x_obs = th.as_tensor(np.asarray(obs), dtype=th.float32)
    v: th.Tensor | None = None
    summed: th.Tensor | None = None
    counts: th.Tensor | None = None
    with th.no_grad():
        for t in range(description.timesteps):
            current = step(encode_step(description, x_obs, t)).to(th.float64)
            if host is None or last.neuron is None:
                x = current
            else:
                v, spikes = neuron_step(last.neuron, v, current)
                x = v if spikes is None else spikes
                if spikes is not None:
                    counts = spikes.clone() if counts is None else counts + spikes
            summed = x.clone() if summed is None else summed + x
    assert summed is not None, "a description runs for at least one time step"
    return readout_values(description, last, summed, v, counts, description.timesteps).reshape(len(obs), -1).numpy()


def _temporal_outputs(framework: str, graph: Any, meta: dict[str, Any], obs: np.ndarray, temporal_dt: float) -> np.ndarray:
    import torch as th

    from sb3_snn.spiking.temporal import encode_population

    info = meta["temporal"]
    last = list(info["layers"])[-1]
    z_never = info["layers"][last].get("z_never")
    if z_never is None:
        raise ValueError(f"layer {last!r}: the graph's metadata gives no z_never (the readout of a silent output)")
    t_never = math.log(float(z_never))
    step = _Stepper(framework, _import(framework, _adapted(framework, graph, meta, temporal_dt), meta, temporal_dt))
    t_in = np.log(encode_population(meta["encoding"], np.asarray(obs)))
    # the dynamics are time-invariant: each sample starts at its first input spike or at 0, whichever is earlier
    origin = np.minimum(t_in.min(axis=1), 0.0)
    bins = np.floor((t_in - origin[:, None]) / temporal_dt).astype(np.int64)
    n_steps = math.ceil((t_never - origin.min()) / temporal_dt)
    n_out = int(meta["n_actions"])
    first = np.full((len(obs), n_out), -1, dtype=np.int64)
    with th.no_grad():
        for k in range(n_steps):
            spikes = step(th.as_tensor((bins == k).astype(np.float32)))
            fired = (spikes.reshape(len(obs), -1).numpy() > 0) & (first < 0)
            first[fired] = k
            if np.all(first >= 0) and k > bins.max():
                break
    t_out = np.where(first >= 0, (first + 1) * temporal_dt + origin[:, None], t_never)
    return float(meta["readout"].get("q_sign", 1.0)) * np.exp(np.minimum(t_out, t_never))


def outputs_with(
    framework: str, graph: Any, observations: np.ndarray, *, temporal_dt: float = DEFAULT_TEMPORAL_DT
) -> np.ndarray:
    """Readout values ``[batch, n_actions]`` of ``graph`` run by ``framework`` (see :func:`run_with`).

    :param framework: one of :data:`FRAMEWORKS`
    :param graph: a ``nir.NIRGraph`` written by the ``nir`` backend, or the path of its ``.nir`` file
    :param observations: ``[batch, *input_shape]``, preprocessed as the graph's input (raw observations for
        a CVTC graph, whose population encoder runs on the host)
    :param temporal_dt: the time step of a CVTC graph's stepped simulation (time unit tau_syn = 1)
    """
    _check_framework(framework)
    if not (isinstance(temporal_dt, (int, float)) and 0 < temporal_dt < math.inf):
        raise ValueError(f"temporal_dt={temporal_dt!r}: must be a finite number > 0")
    graph, meta = _read(graph)
    check_supported(framework, graph)
    obs = np.asarray(observations, dtype=np.float64)
    expected = tuple(meta["input_shape"])
    if obs.shape[1:] != expected:
        raise ValueError(f"observations of shape {obs.shape}: expected [batch, {', '.join(map(str, expected))}]")
    if "temporal" in meta:
        return _temporal_outputs(framework, graph, meta, obs, float(temporal_dt))
    return _discrete_outputs(framework, copy.copy(graph), meta, obs)


def run_with(framework: str, graph: Any, observations: np.ndarray, *, temporal_dt: float = DEFAULT_TEMPORAL_DT) -> np.ndarray:
    """Greedy actions ``[batch]`` of a NIR graph written by the ``nir`` backend, imported and run by ``framework``.

    :param framework: one of :data:`FRAMEWORKS` (``"norse"``, ``"snntorch"``)
    :param graph: a ``nir.NIRGraph`` or the path of a ``.nir`` file (``deployment.save("x.nir")``)
    :param observations: ``[batch, *input_shape]``, preprocessed as the graph's input (raw observations for
        a CVTC graph)
    :param temporal_dt: the time step of a CVTC graph's stepped simulation (time unit tau_syn = 1)
    :raises ValueError: an unknown framework (the message lists the allowed ones), a graph without
        sb3-snn metadata, observations of the wrong shape
    :raises ImportError: the framework is not installed (``pip install 'sb3-snn[interchange]'``)
    :raises UnsupportedNetworkError: a node the framework cannot express (see :data:`UNSUPPORTED`)
    """
    return np.asarray(outputs_with(framework, graph, observations, temporal_dt=temporal_dt)).argmax(axis=1)

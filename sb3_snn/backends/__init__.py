"""Hardware backends: the public API a backend plugin builds on.

Usage::

    from sb3_snn import backends

    backend = backends.load("nc64c")                       # any name in the sb3_snn.backends group
    deployment = backend.compile(policy, example_obs, action_rate_hz=50.0)   # check -> map -> build
    print(deployment.report())                              # a table; .to_dict() / .to_json()
    actions = deployment.run(obs)
    deployment.save("out/nc64c")
    again = backend.load_deployment("out/nc64c")            # no original policy needed

A backend plugin is a distribution declaring an entry point in the ``sb3_snn.backends`` group that
names a :class:`Backend` subclass implementing :meth:`Backend.build`. It should import only this module
and :mod:`sb3_snn.spiking`; everything else it needs (the float reference simulation, SynOps counting,
artifact reading and writing) is re-exported here. Every backend accepts the same call,
``compile(policy, example_obs, *, action_rate_hz=None, **options)``, and refuses an option it does not
know (:class:`UnknownOptionError`, listing :meth:`Backend.compile_options`).
"""

from __future__ import annotations

from typing import Any

from sb3_snn import registry
from sb3_snn.backends.artifact import read_artifact, write_artifact
from sb3_snn.backends.base import (
    COST_CONTEXT,
    ArtifactError,
    Backend,
    BackendError,
    BackendReport,
    Deployment,
    FitError,
    InvalidOptionError,
    NonFiniteInputError,
    ReportSection,
    UnknownOptionError,
    UnsupportedNetworkError,
    agreement,
    as_batch,
    as_description,
    describe_network,
)
from sb3_snn.backends.published import CONTEXT_POWER_W, FP32_MAC_PJ
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.simulate import SimulationResult, encode_step, layer_current, neuron_step, squash_outputs
from sb3_snn.spiking.simulate import simulate as reference_simulate
from sb3_snn.spiking.synops import CostReport, count_operations, dense_macs, fan_out
from sb3_snn.spiking.temporal import encode_population

__all__ = [
    "CONTEXT_POWER_W",
    "COST_CONTEXT",
    "FP32_MAC_PJ",
    "ArtifactError",
    "Backend",
    "BackendError",
    "BackendReport",
    "CostReport",
    "Deployment",
    "FitError",
    "InvalidOptionError",
    "Layer",
    "NeuronPopulation",
    "NonFiniteInputError",
    "ReportSection",
    "SimulationResult",
    "SpikingDescription",
    "UnknownOptionError",
    "UnsupportedNetworkError",
    "agreement",
    "as_batch",
    "as_description",
    "available",
    "count_operations",
    "dense_macs",
    "describe_network",
    "encode_population",
    "encode_step",
    "fan_out",
    "layer_current",
    "load",
    "neuron_step",
    "read_artifact",
    "reference_simulate",
    "squash_outputs",
    "write_artifact",
]


def available() -> list[str]:
    """Names of the installed backends."""
    return sorted(registry.plugins("backends"))


def load(name: str, **options: Any) -> Backend:
    """An instance of the backend registered as ``name``.

    :param name: a name in the ``sb3_snn.backends`` entry-point group (``"nir"``, ``"nc64c"``, ...)
    :param options: passed to the backend's constructor (e.g. ``spec=...`` for ``nc64c``)
    :raises sb3_snn.registry.UnknownPluginError: no installed distribution registers ``name``
    """
    backend_class = registry.get_backend(name)
    backend = backend_class(**options)
    if not isinstance(backend, Backend):
        raise TypeError(f"backend {name!r} ({backend_class!r}) is not a sb3_snn.backends.Backend")
    return backend

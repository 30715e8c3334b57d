"""The *map/build*, *run*, *report* and *save/load* steps of the ``example`` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sb3_snn.backends import (
    ArtifactError,
    Backend,
    BackendReport,
    Deployment,
    ReportSection,
    SpikingDescription,
    count_operations,
    describe_network,
    read_artifact,
    reference_simulate,
    write_artifact,
)
from sb3_snn_example_backend.check import TARGET, check_network, count_resources

#: The artifact's format name and version: bump the version on any incompatible change, so that an
#: old reader refuses a new artifact with a clear message instead of misreading it.
FORMAT = "sb3-snn/example-deployment"
FORMAT_VERSION = 1
#: How many example observations (and their actions) the artifact keeps as a self-test.
N_SELF_TEST = 32


class ExampleDeployment(Deployment):
    """The float description, run by the reference simulation, plus the figures measured at compile time.

    :param description: the network
    :param max_neurons: the neuron budget it was checked against
    :param activity: what :func:`count_operations` measured on the example observations (plain
        JSON data, so that a loaded deployment reports without re-running anything)
    :param self_test_obs: a few example observations, saved with their actions as a self-test
    :param action_rate_hz: actions per second (the cost context): turns SynOps per action into SynOps
        per second in the report (``None``: not given)
    """

    backend_name = TARGET

    def __init__(self, description: SpikingDescription, max_neurons: int, activity: dict[str, Any],
                 self_test_obs: np.ndarray, action_rate_hz: float | None = None) -> None:
        super().__init__(description)
        self.max_neurons, self.activity, self.self_test_obs = max_neurons, activity, self_test_obs
        self.action_rate_hz = action_rate_hz
        self.resources = count_resources(description)

    def _run_batch(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``[batch]`` for float64 observations ``[batch, *input_shape]`` (the base class's ``run``
        accepts one observation or a batch and checks them; a real backend runs its own model here: an integer
        simulation, the chip, an emulator).
        """
        return reference_simulate(self.description, obs).actions

    def report(self) -> BackendReport:
        """A summary, a per-layer table, and the standard ``metrics`` for programs comparing backends."""
        neurons = sum(r["neurons"] for r in self.resources.values())
        synapses = sum(r["synapses"] for r in self.resources.values())
        summary = ReportSection("summary", ["quantity", "value"], [
            ["neurons", neurons], ["neuron budget", self.max_neurons], ["synapses", synapses],
            ["time steps", self.description.timesteps],
            ["SynOps per action", self.activity["synops_per_action"]],
            ["analog input MACs per action", self.activity["input_macs"]],
            ["dense ANN MACs", self.activity["ann_macs"]],
            ["example observations", self.activity["n_obs"]],
        ])
        if self.action_rate_hz is not None:  # the cost context: what the activity costs per second
            summary.rows += [["actions per second", self.action_rate_hz],
                             ["SynOps per second", self.activity["synops_per_action"] * self.action_rate_hz]]
        layers = ReportSection("layers", ["layer", "neurons", "synapses", "SynOps/action", "firing rate"], [
            [name, r["neurons"], r["synapses"], self.activity["synops_per_layer"].get(name),
             self.activity["firing_rates"].get(name)]
            for name, r in self.resources.items()
        ])
        notes = ["float reference simulation: no quantisation, no timing or energy model",
                 "SynOps and firing rates are averages over the example observations given to compile()"]
        metrics = {"synops_per_action": float(self.activity["synops_per_action"]),
                   "neurons": float(neurons), "synapses": float(synapses)}
        if self.action_rate_hz is not None:
            metrics["synops_per_second"] = float(self.activity["synops_per_action"]) * self.action_rate_hz
        return BackendReport(TARGET, describe_network(self.description), [summary, layers], notes, metrics)

    def save(self, path: str | Path) -> Path:
        """Write ``deployment.json`` + ``arrays.npz`` + ``description/`` into the folder ``path``.

        The rules: JSON for settings and figures, NPZ for numbers, nothing pickled;
        :func:`write_artifact` adds the SHA-256 of every file and of the document.
        """
        document = {"backend": TARGET, "max_neurons": self.max_neurons, "activity": self.activity,
                    "action_rate_hz": self.action_rate_hz}
        arrays = {"self_test_obs": self.self_test_obs, "self_test_actions": self.run(self.self_test_obs)}
        return write_artifact(path, format=FORMAT, format_version=FORMAT_VERSION, document=document,
                              arrays=arrays, description=self.description)


class ExampleBackend(Backend):
    """The ``example`` backend: checks a neuron budget, runs the float reference simulation.

    :param max_neurons: the neuron budget of a whole network (the "chip size")
    """

    name = TARGET

    def __init__(self, max_neurons: int = 4096) -> None:
        self.max_neurons = int(max_neurons)

    def build(  # type: ignore[override]  # compile() accepts exactly the options named here
        self, description: SpikingDescription, example_obs: np.ndarray, *, action_rate_hz: float | None = None,
        max_neurons: int | None = None,
    ) -> ExampleDeployment:
        """Check, then build a deployment and measure its activity on ``example_obs``.

        ``backend.compile(policy, example_obs, action_rate_hz=..., max_neurons=...)`` calls this with the
        policy's description (the only thing a backend looks at), after refusing options this method
        does not name.

        :param description: the network
        :param example_obs: ``[batch, *input_shape]`` observations (preprocessed as the network expects)
        :param action_rate_hz: actions per second (the cost context), for the SynOps-per-second figure
        :param max_neurons: overrides the backend's budget (CLI: ``--set max_neurons=N``)
        :raises UnsupportedNetworkError: temporal neurons
        :raises FitError: over the neuron budget
        """
        budget = self.max_neurons if max_neurons is None else int(max_neurons)
        check_network(description, budget)  # check: before anything runs
        # map: a real backend places layers on cores here; build: quantises, writes its program.
        # This one keeps the float description, so the only work is measuring activity.
        obs = np.asarray(example_obs, dtype=np.float64)
        result = reference_simulate(description, obs)
        cost = count_operations(description, result.spike_counts)
        activity = {"n_obs": len(obs), "synops_per_action": cost.synops, "input_macs": cost.input_macs,
                    "ann_macs": cost.ann_macs, "synops_per_layer": cost.synops_per_layer,
                    "firing_rates": cost.firing_rates}
        return ExampleDeployment(description, budget, activity, obs[:N_SELF_TEST], action_rate_hz)

    def load_deployment(self, path: str | Path) -> ExampleDeployment:
        """Read a folder written by :meth:`ExampleDeployment.save` (checksums verified, no pickle).

        :raises ArtifactError: another format or version, a tampered or corrupted file, or a network
            that no longer gives the actions it gave when it was saved
        """
        document, arrays, description = read_artifact(path, format=FORMAT, format_version=FORMAT_VERSION)
        deployment = ExampleDeployment(description, int(document["max_neurons"]), document["activity"],
                                       arrays["self_test_obs"], document.get("action_rate_hz"))
        # Self-test: the loaded network must act as the saved one did on the stored observations.
        if not np.array_equal(deployment.run(arrays["self_test_obs"]), arrays["self_test_actions"]):
            raise ArtifactError(f"{path}: the loaded network does not reproduce its saved actions")
        return deployment

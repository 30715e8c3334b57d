"""NIR files that other toolchains run: ``deployment.save("x.nir")`` and the graph imported by snnTorch and norse.

Per framework and policy kind (converted DQN: IF neurons; SDN student: LIF neurons and a non-spiking
readout; CVTC: time-to-first-spike, CubaLIF), :data:`EXPECTED` pins whether the written graph runs there,
or the NIR node type the framework cannot express; a framework that is not installed is skipped.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

nir = pytest.importorskip("nir")
th = pytest.importorskip("torch")

from sb3_snn import backends  # noqa: E402
from sb3_snn.backends import UnsupportedNetworkError, examples  # noqa: E402
from sb3_snn.backends import nir_interchange as interchange  # noqa: E402
from sb3_snn.backends.nir_backend import from_nir, sidecar_path  # noqa: E402

#: (framework, kind) -> "runs", or the NIR node type the framework cannot express
EXPECTED = {
    ("norse", "converted"): "runs",
    ("norse", "sdn"): "runs",
    ("norse", "cvtc"): "runs",
    ("snntorch", "converted"): "IF",
    ("snntorch", "sdn"): "runs",
    ("snntorch", "cvtc"): "CubaLIF",
}
KINDS = ("converted", "sdn", "cvtc")
TEMPORAL_DT = 2e-2  # coarse enough for a quick test; the benchmark uses the default resolution


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step simulation of small networks: torch's threads only fight over shared cores."""
    before = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(before)


def _framework(name: str) -> None:
    if not interchange.is_installed(name):
        pytest.skip(f"{name} is not installed (pip install 'sb3-snn[interchange]')")


def _cvtc_policy():
    import sb3_snn

    policy = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), seed=0).policy
    policy.set_inference("mostafa")  # the beta-free network NIR expresses
    return policy


def _deployment(kind: str, n_obs: int = 48):
    """A tiny network of ``kind`` compiled with the nir backend, and observations for it."""
    if kind == "cvtc":
        obs = np.random.default_rng(0).uniform(-0.2, 0.2, size=(n_obs, 4))
        return backends.load("nir").compile(_cvtc_policy(), obs), obs
    if kind == "converted":  # IF, reset by subtraction: NIR has no such reset, written as reset to 0
        description = examples.converted_like(hidden=(16, 16), timesteps=16)
        options = {"approximate_reset": True}
    else:
        description = examples.sdn_like(encoding="analog", hidden=(16, 16), timesteps=8)
        options = {}
    obs = examples.example_observations(description, n_obs)
    return backends.load("nir").compile(description, obs, **options), obs


def test_save_to_a_nir_path_writes_the_graph_there_with_a_sidecar(tmp_path):
    deployment, obs = _deployment("sdn")
    path = deployment.save(tmp_path / "student.nir")
    assert path == tmp_path / "student.nir" and sorted(p.name for p in tmp_path.iterdir()) == [
        "student.nir",
        "student.nir.json",
    ]
    graph = nir.read(path)  # what a user of nir.write / nir.read expects
    assert {"fc0", "fc0_neuron", "output"} <= set(graph.nodes)
    side = json.loads(sidecar_path(path).read_text())
    assert side["format"] == "sb3-snn/nir-sidecar" and len(side["graph_sha256"]) == 64 and side["checksum"]
    assert side["policy_kind"] == "sdn" and side["neurons"] == ["LIF", "nonspiking"]
    assert side["readout"]["kind"] == "membrane_mean" and side["encoding"] == {"kind": "analog"}
    assert side["timesteps"] == 8 and side["observation_preprocessing"]
    loaded = backends.load("nir").load_deployment(path)
    np.testing.assert_array_equal(loaded.run(obs), deployment.run(obs))
    assert loaded.calibration == deployment.calibration


def test_the_sidecar_keeps_the_original_network_of_an_approximated_graph(tmp_path):
    deployment, obs = _deployment("converted")
    loaded = backends.load("nir").load_deployment(deployment.save(tmp_path / "dqn.nir"))
    assert loaded.description.layers[0].neuron.reset == "subtract"  # the original
    assert loaded.exported.layers[0].neuron.reset == "zero"  # what the graph says
    assert loaded.approximations == deployment.approximations
    np.testing.assert_array_equal(loaded.run(obs), deployment.run(obs))


@pytest.mark.parametrize("damage", ["graph", "sidecar", "missing_sidecar"])
def test_a_modified_nir_file_or_sidecar_is_refused(tmp_path, damage):
    deployment, _ = _deployment("sdn", 8)
    path = deployment.save(tmp_path / "s.nir")
    side = sidecar_path(path)
    if damage == "graph":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        match = r"s\.nir: checksum mismatch"
    elif damage == "sidecar":
        side.write_text(side.read_text().replace('"timesteps": 8', '"timesteps": 9'))
        match = r"s\.nir\.json: checksum mismatch"
    else:
        side.unlink()
        match = r"no sidecar s\.nir\.json.*from_nir"
    with pytest.raises(backends.ArtifactError, match=match):
        backends.load("nir").load_deployment(path)


def test_save_paths_other_than_a_nir_file_or_a_folder_are_refused(tmp_path):
    deployment, _ = _deployment("sdn", 8)
    with pytest.raises(ValueError, match=r"expected a file path ending in '\.nir'.*or a folder.*'\.h5'"):
        deployment.save(tmp_path / "student.h5")
    folder = deployment.save(tmp_path / "artifact")  # a folder keeps the artifact layout (sb3-snn export --out)
    assert (folder / "model.nir").is_file() and (folder / "deployment.json").is_file()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("framework", interchange.FRAMEWORKS)
def test_written_graph_runs_in_the_framework_or_is_refused_by_name(tmp_path, framework, kind):
    _framework(framework)
    deployment, obs = _deployment(kind)
    path = deployment.save(tmp_path / f"{kind}.nir")
    expected = EXPECTED[(framework, kind)]
    if expected != "runs":
        with pytest.raises(UnsupportedNetworkError, match=rf"{framework} cannot run NIR {expected}: ") as error:
            interchange.run_with(framework, path, obs)
        assert interchange.UNSUPPORTED[framework][expected] in str(error.value)
        return
    graph_actions = deployment.run(obs)  # the network the file describes, in the reference simulation
    outputs = interchange.outputs_with(framework, path, obs, temporal_dt=TEMPORAL_DT)
    actions = interchange.run_with(framework, path, obs, temporal_dt=TEMPORAL_DT)
    np.testing.assert_array_equal(actions, outputs.argmax(axis=1))
    reference = backends.reference_simulate(deployment.exported, obs).outputs
    if kind == "cvtc":
        # stepped at TEMPORAL_DT: spike times are late by less than one step, Q = exp(t) off by < e^dt - 1
        relative = np.abs(outputs / reference - 1)
        assert np.median(relative) < 2 * TEMPORAL_DT
        # an action differs only where the reference's two spike times lie within two steps (a near-tie)
        spike_times = np.log(np.abs(reference))
        rows = np.flatnonzero(actions != graph_actions)
        gaps = np.abs(spike_times[rows, actions[rows]] - spike_times[rows, graph_actions[rows]])
        assert np.all(gaps <= 2 * TEMPORAL_DT), gaps
    else:
        # the frameworks compute in float32, the reference in float64: equal up to rounding
        np.testing.assert_allclose(outputs, reference, atol=1e-4)
        assert np.mean(actions == graph_actions) >= 0.98


def test_the_upstream_limits_behind_the_refusals_are_real():
    """The reasons in UNSUPPORTED, as the importers behave: snnTorch asserts on IF and CubaLIF, norse drops LI."""
    if interchange.is_installed("snntorch"):
        from snntorch.import_nir import import_from_nir

        converted, _ = _deployment("converted", 4)
        with pytest.raises(AssertionError, match="r != 1"):
            import_from_nir(converted.graph)
        cvtc, _ = _deployment("cvtc", 4)
        with pytest.raises(AssertionError, match="r not supported in CubaLIF"):
            import_from_nir(cvtc.graph)
        assert interchange.SNNTORCH_DT == 1e-4
    if interchange.is_installed("norse"):
        import norse.torch

        sdn, _ = _deployment("sdn", 4)
        module = norse.torch.from_nir(sdn.graph, dt=sdn.dt, ignore_warnings=True)
        names = {name for name, _ in module.named_children()}
        assert "fc1_neuron" in names and "fc2_neuron" not in names  # the LI readout node is left out


def test_li_if_cvtc_graph_is_refused_by_norse():
    _framework("norse")
    obs = np.random.default_rng(0).uniform(-0.2, 0.2, size=(4, 4))
    deployment = backends.load("nir").compile(_cvtc_policy(), obs, temporal_node="li_if")
    with pytest.raises(UnsupportedNetworkError, match=r"'cvtc0_synapse'.*norse cannot run NIR LI"):
        interchange.run_with("norse", deployment.graph, obs)


def test_unknown_framework_and_foreign_graphs_are_refused_clearly():
    deployment, obs = _deployment("sdn", 4)
    with pytest.raises(ValueError, match=r"framework 'rockpool' is not supported.*allowed: norse, snntorch"):
        interchange.run_with("rockpool", deployment.graph, obs)
    bare = nir.NIRGraph(nodes=dict(deployment.graph.nodes), edges=list(deployment.graph.edges))
    with pytest.raises(ValueError, match=r"not written by sb3-snn"):
        interchange.run_with(interchange.FRAMEWORKS[0], bare, obs)
    with pytest.raises(ValueError, match=r"observations of shape \(4, 3\)"):
        interchange.run_with(interchange.FRAMEWORKS[0], deployment.graph, obs[:, :3])
    assert from_nir(deployment.graph).timesteps == 8

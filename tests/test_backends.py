"""The backend API: discovery, the description hand-off, reports, artifacts, and the core without the plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sb3_snn import backends
from sb3_snn.backends import artifact, examples
from sb3_snn.registry import UnknownPluginError

from conftest import ROOT, run_cli


def test_load_both_backends_and_unknown_name():
    assert {"nir", "nc64c"} <= set(backends.available())
    assert backends.load("nir").name == "nir"
    assert backends.load("nc64c", weight_bits=6).spec.weight_bits == 6
    with pytest.raises(UnknownPluginError, match=r"registered backends: .*nc64c.*nir"):
        backends.load("loihi9")


def test_list_shows_both_backends(tmp_path):
    out = run_cli(["-m", "sb3_snn", "list"], cwd=tmp_path).stdout
    backends_part = out.split("backends (")[1]
    assert "nc64c" in backends_part and "sb3-snn-nc64c" in backends_part
    assert "nir" in backends_part and "sb3_snn.backends.nir_backend:NIRBackend" in backends_part


class _Policy:
    def __init__(self, description):
        self.description = description

    def spiking_description(self):
        return self.description


def test_as_description_accepts_description_policy_and_folder(tmp_path):
    description = examples.converted_like(hidden=(8,), timesteps=4)
    assert backends.as_description(description) is description
    assert backends.as_description(_Policy(description)) is description
    loaded = backends.as_description(description.to_files(tmp_path / "d"))
    np.testing.assert_array_equal(loaded.layers[0].weight, description.layers[0].weight)
    with pytest.raises(TypeError, match="no spiking_description"):
        backends.as_description(object())


def test_report_prints_a_table_and_converts_to_json():
    section = backends.ReportSection("summary", ["quantity", "value"], [["cores", 3], ["energy", 1.5e-9]])
    report = backends.BackendReport("x", "net", [section],
                                    ["an assumption"])
    text = str(report)
    assert "summary" in text and "quantity" in text and "cores" in text and "1.500e-09" in text and "an assumption" in text
    again = json.loads(report.to_json())
    assert again["sections"][0]["rows"][0] == ["cores", 3]
    assert report.section("summary").rows[1][1] == 1.5e-9


def _saved(tmp_path: Path) -> tuple[Path, np.ndarray]:
    description = examples.converted_like(hidden=(16,), timesteps=8)
    obs = examples.example_observations(description, 32)
    deployment = backends.load("nc64c").compile(description, obs)
    return deployment.save(tmp_path / "art"), deployment.run(obs)


def test_artifact_round_trip_needs_no_policy(tmp_path):
    path, actions = _saved(tmp_path)
    loaded = backends.load("nc64c").load_deployment(path)
    obs = examples.example_observations(loaded.description, 32)
    np.testing.assert_array_equal(loaded.run(obs), actions)
    assert json.loads((path / "deployment.json").read_text())["format_version"] == 1


@pytest.mark.parametrize("damage", ["npz_bytes", "json_value", "description", "version", "missing", "garbage"])
def test_tampered_or_corrupted_artifact_is_refused(tmp_path, damage):
    path, _ = _saved(tmp_path)
    doc_path = path / "deployment.json"
    if damage == "npz_bytes":
        data = bytearray((path / "arrays.npz").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / "arrays.npz").write_bytes(bytes(data))
        match = "arrays.npz: checksum mismatch"
    elif damage == "json_value":
        document = json.loads(doc_path.read_text())
        document["spec"]["weight_bits"] += 1  # any change to the document must be caught
        doc_path.write_text(json.dumps(document))
        match = "document was modified"
    elif damage == "description":
        weights = path / "description" / "description.json"
        weights.write_text(weights.read_text().replace('"threshold": 1.0', '"threshold": 2.0', 1))
        match = "description.json: checksum mismatch"
    elif damage == "version":
        document = json.loads(doc_path.read_text())
        document["format_version"] = 99
        doc_path.write_text(json.dumps(document))
        match = "format version 99 is not supported"
    elif damage == "missing":
        (path / "arrays.npz").unlink()
        match = "missing file arrays.npz"
    else:
        doc_path.write_text("{not json")
        match = "corrupted"
    with pytest.raises(backends.ArtifactError, match=match):
        backends.load("nc64c").load_deployment(path)


def test_pickled_arrays_are_refused_even_with_valid_checksums(tmp_path):
    path, _ = _saved(tmp_path)
    np.savez(path / "arrays.npz", evil=np.array([{"a": 1}], dtype=object))
    document = json.loads((path / "deployment.json").read_text())
    document["files"]["arrays.npz"] = artifact._sha256(path / "arrays.npz")
    document["checksum"] = artifact._document_checksum(document)
    (path / "deployment.json").write_text(json.dumps(document))
    with pytest.raises(backends.ArtifactError, match="unreadable data"):
        backends.load("nc64c").load_deployment(path)


HIDE_PLUGIN = textwrap.dedent("""
    # What an uninstalled plugin looks like to sb3-snn: its distribution's entry points are gone and
    # its module cannot be imported.
    import importlib.metadata as md, sys
    _entry_points = md.entry_points
    def entry_points(**kwargs):
        found = _entry_points(**kwargs)
        if "group" not in kwargs:
            return found
        return md.EntryPoints(ep for ep in found if ep.dist is None or ep.dist.metadata["Name"] != "sb3-snn-nc64c")
    md.entry_points = entry_points
    sys.modules["sb3_snn_nc64c"] = None
    from sb3_snn.cli.main import main
    raise SystemExit(main(sys.argv[1:]))
""")


@pytest.mark.expensive
def test_core_works_without_the_nc64c_plugin(tmp_path):
    """Hide the plugin's distribution (entry points + module), then list, export with nir, and ask for nc64c."""
    script = tmp_path / "no_plugin.py"
    script.write_text(HIDE_PLUGIN)
    listing = run_cli([str(script), "list"], cwd=tmp_path).stdout
    assert "nir" in listing and "nc64c" not in listing
    folder = examples.sdn_like(hidden=(8,)).to_files(tmp_path / "desc")
    out = run_cli([str(script), "export", "--backend", "nir", "--policy-file", str(folder), "--out", str(tmp_path / "o"),
                   "--n-calibration", "8"], cwd=tmp_path).stdout
    assert "backend: nir" in out and (tmp_path / "o" / "model.nir").is_file()
    proc = subprocess.run([sys.executable, str(script), "export", "--backend", "nc64c", "--policy-file", str(folder),
                           "--out", str(tmp_path / "o2")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown backend 'nc64c'" in proc.stderr


def test_plugin_imports_only_the_public_backend_api():
    package = ROOT / "plugins" / "sb3-snn-nc64c" / "sb3_snn_nc64c"
    for source in package.glob("*.py"):
        for line in source.read_text().splitlines():
            if line.startswith(("from sb3_snn", "import sb3_snn")) and "sb3_snn_nc64c" not in line:
                allowed = ("from sb3_snn.backends import", "from sb3_snn.spiking.description import")
                assert line.startswith(allowed), (source.name, line)


def _example_for(name: str):
    """A small network every installed backend accepts (nir: no reset by subtraction)."""
    description = examples.sdn_like(hidden=(8,)) if name == "nir" else examples.converted_like(hidden=(8,), timesteps=8)
    return description, examples.example_observations(description, 16)


@pytest.mark.parametrize("name", backends.available())
def test_every_backend_takes_the_cost_context_and_refuses_unknown_options(name):
    """``compile(..., action_rate_hz=...)`` works on every backend (the pipeline passes it to all); an unknown
    option is refused with its name and the accepted ones."""
    backend = backends.load(name)
    description, obs = _example_for(name)
    deployment = backend.compile(description, obs, action_rate_hz=25.0)
    report = deployment.report()
    assert report.backend == name == backend.name
    assert "25" in str(report)  # used (a power figure) or recorded
    assert "action_rate_hz" not in backend.compile_options() and backend.compile_options() == sorted(backend.compile_options())
    with pytest.raises(backends.UnknownOptionError, match=rf"backend '{name}' has no option 'no_such_option'; accepted: "
                                                          r"action_rate_hz") as error:
        backend.compile(description, obs, no_such_option=1)
    assert error.value.accepted == backend.compile_options() and isinstance(error.value, TypeError)


def _tiny_cvtc(beta: float):
    import sb3_snn

    model = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[16], beta=beta), seed=0)
    return model.policy


@pytest.mark.parametrize("mode", ["beta", "mostafa"])
@pytest.mark.parametrize("beta", [1e-3, 0.05])
def test_temporal_reference_simulation_equals_the_cvtc_policy(mode, beta):
    """``sb3_snn.spiking.simulate`` on a CVTC policy's description gives the policy's own Q-values (float64, to
    1e-9 relative: only float rounding differs) and actions, in both inference modes; every neuron spikes at most
    once, and under Mostafa's equation some may not at all."""
    import torch as th

    from sb3_snn.spiking import simulate

    policy = _tiny_cvtc(beta)
    policy.set_training_mode(False)
    policy.set_inference(mode)
    description = policy.spiking_description()
    assert description.is_temporal
    obs = (np.random.default_rng(1).standard_normal((64, 4)) * examples.CARTPOLE_SCALE).astype(np.float32)
    network = policy.q_net.double()
    with th.no_grad():  # the policy's encoder sees float32 observations: give the simulation the same values
        q_values = network(th.as_tensor(obs)).numpy()
    result = simulate(description, obs.astype(np.float64))
    np.testing.assert_allclose(result.outputs, q_values, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(result.actions, q_values.argmax(axis=1))
    assert set(result.spike_counts) == {layer.name for layer in description.layers}
    for counts in result.spike_counts.values():
        assert set(np.unique(counts)) <= {0.0, 1.0}
    if mode == "beta":  # the beta term makes every neuron fire
        assert all(counts.min() == 1.0 for counts in result.spike_counts.values())

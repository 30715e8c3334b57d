"""The example backend plugin (plugins/sb3-snn-example-backend), built and installed like a user would.

The distribution is installed with ``pip install --target`` into a temporary folder and used through
``PYTHONPATH`` in subprocesses, so these tests check the packaging (entry point, package discovery)
as well as the code, whether or not the dev venv has the plugin installed too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sb3_snn.backends import examples

PLUGIN = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in ``cwd`` with ``env`` added; fail the test with its output on a non-zero exit."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(args)}\nstdout:\n{proc.stdout[-4000:]}\n"
                    f"stderr:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """Build the plugin from a clean copy of its source and install it into a temporary folder."""
    src = tmp_path_factory.mktemp("example_src") / "sb3-snn-example-backend"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    site = tmp_path_factory.mktemp("example_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert list(site.glob("sb3_snn_example_backend-*.dist-info"))
    assert (site / "sb3_snn_example_backend" / "backend.py").is_file()
    return site


def test_list_shows_the_example_backend(example_site, tmp_path):
    out = run_cli(["-m", "sb3_snn", "list"], cwd=tmp_path, env={"PYTHONPATH": str(example_site)}).stdout
    backends_part = out.split("backends (")[1]
    assert "example" in backends_part and "sb3-snn-example-backend" in backends_part
    assert "sb3_snn_example_backend:ExampleBackend" in backends_part
    assert "nir" in backends_part  # the others still load


API_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    from pathlib import Path
    import numpy as np
    from sb3_snn import backends
    from sb3_snn.registry import PluginLoadWarning
    warnings.simplefilter("error", PluginLoadWarning)  # a plugin that fails to load fails the test
    from sb3_snn.backends import examples
    import sb3_snn_example_backend

    out = Path(sys.argv[1])
    assert Path(sb3_snn_example_backend.__file__).is_relative_to(Path(sys.argv[2])), sb3_snn_example_backend.__file__
    assert "example" in backends.available()

    description = examples.converted_like(hidden=(16,), timesteps=8)
    obs = examples.example_observations(description, n=64)
    backend = backends.load("example", max_neurons=100)
    deployment = backend.compile(description, obs)
    actions = deployment.run(obs)
    np.testing.assert_array_equal(actions, backends.reference_simulate(description, obs).actions)

    report = deployment.report()
    print(report)
    assert report.backend == "example" and report.section("summary") and report.section("layers")
    assert report.metrics["neurons"] == 18 and report.metrics["synapses"] == 4 * 16 + 16 * 2
    assert report.metrics["synops_per_action"] > 0
    json.loads(report.to_json())

    deployment.save(out / "dep")
    assert (out / "dep" / "deployment.json").is_file() and (out / "dep" / "arrays.npz").is_file()
    again = backends.load("example").load_deployment(out / "dep")
    np.testing.assert_array_equal(again.run(obs), actions)
    assert again.report().to_dict() == report.to_dict()

    # check: over the neuron budget, temporal neurons
    try:
        backends.load("example", max_neurons=10).compile(description, obs)
        raise AssertionError("no FitError")
    except backends.FitError as exc:
        assert exc.resource == "neurons" and exc.required == 18 and exc.limit == 10, exc
    layer = description.layers[0]
    temporal = backends.SpikingDescription(
        [backends.Layer("t0", "linear", layer.input_shape, layer.output_shape, layer.weight, layer.bias,
                        neuron=backends.NeuronPopulation("temporal", reset="none"))],
        description.input_shape, description.encoding, 8, {"kind": "rate"}, 16)
    try:
        backend.compile(temporal, obs)
        raise AssertionError("no UnsupportedNetworkError")
    except backends.UnsupportedNetworkError as exc:
        assert exc.layer == "t0" and "temporal" in exc.feature, exc

    # the artifact is checksummed: an edited document is refused
    document = json.loads((out / "dep" / "deployment.json").read_text())
    document["max_neurons"] = 1
    (out / "dep" / "deployment.json").write_text(json.dumps(document))
    try:
        backend.load_deployment(out / "dep")
        raise AssertionError("no ArtifactError")
    except backends.ArtifactError as exc:
        assert "checksum mismatch" in str(exc), exc
    print("ok")
""")


def test_compile_run_report_save_load(example_site, tmp_path):
    script = tmp_path / "use_example.py"
    script.write_text(API_SCRIPT)
    proc = run_cli([str(script), str(tmp_path), str(example_site)], cwd=tmp_path, env={"PYTHONPATH": str(example_site)})
    assert proc.stdout.strip().endswith("ok")
    assert "backend: example" in proc.stdout and "SynOps per action" in proc.stdout


def test_export_command_with_the_example_backend(example_site, tmp_path):
    folder = examples.converted_like(hidden=(16,), timesteps=8).to_files(tmp_path / "desc")
    env = {"PYTHONPATH": str(example_site)}
    out = run_cli(["-m", "sb3_snn", "export", "--backend", "example", "--policy-file", str(folder),
                   "--out", str(tmp_path / "out"), "--n-calibration", "32", "--json", str(tmp_path / "r.json")],
                  cwd=tmp_path, env=env).stdout
    assert "backend: example" in out and "artifact:" in out
    assert (tmp_path / "out" / "deployment.json").is_file()
    assert json.loads((tmp_path / "r.json").read_text())["report"]["metrics"]["neurons"] == 18
    # --set passes backend options: a budget the network breaks is a clear error, exit code 1
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_snn", "export", "--backend", "example", "--policy-file", str(folder),
         "--out", str(tmp_path / "out2"), "--n-calibration", "8", "--set", "max_neurons=5"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "does not fit example: neurons needs 18, limit is 5" in proc.stderr


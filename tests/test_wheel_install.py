"""The built wheels (sb3-snn and both plugins) installed into a fresh venv work from an empty folder.

The wheels are built from a copy of the sources (so nothing is written into the repository and no stale
``build/`` folder leaks into them) and installed with ``--no-deps --no-index`` into a new venv. The
dependencies (torch, SB3, rl_zoo3, ...) are the dev venv's, made visible through a ``.pth`` file that
points at a folder of links to the dev venv's site-packages, minus everything of sb3-snn's own editable
install (its ``__editable__`` finders and ``.pth`` files, its ``.dist-info`` folders). Every command runs
with ``PYTHONPATH`` unset, from a temporary folder: only the installed package can answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.expensive

DISTRIBUTIONS = {  # source folder -> distribution name as the wheel spells it
    ROOT: "sb3_snn",
    ROOT / "plugins" / "sb3-snn-nc64c": "sb3_snn_nc64c",
    ROOT / "plugins" / "sb3-snn-example-backend": "sb3_snn_example_backend",
}
OWN = ("sb3_snn", "sb3-snn", "__editable__", "__editable___sb3")  # names of the dev venv's editable installs
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "tests",
                                     "benchmarks", "docs", "plugins", "results", "logs", "scripts", ".ci")


def _is_own(entry: Path) -> bool:
    """An entry of the dev site-packages that belongs to sb3-snn's editable installs."""
    if entry.name.startswith(OWN):
        return True
    return entry.suffix == ".pth" and str(ROOT) in entry.read_text(errors="replace")


def _dependency_view(view: Path) -> Path:
    """A folder of links to the dev venv's site-packages entries, without sb3-snn's own."""
    site = Path(sysconfig.get_paths()["purelib"])
    view.mkdir()
    for entry in site.iterdir():
        if not _is_own(entry):
            (view / entry.name).symlink_to(entry)
    assert not list(view.glob("sb3_snn*")) and not list(view.glob("__editable__*"))
    return view


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode})\nstdout:\n{proc.stdout[-4000:]}\n"
                    f"stderr:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict[str, Path | dict[str, str]]:
    """Build the three wheels, install them into a fresh venv; its bin folder, environment and an empty folder."""
    tmp = tmp_path_factory.mktemp("wheel_install")
    wheels = tmp / "wheels"
    for source, _ in DISTRIBUTIONS.items():
        copy = tmp / "src" / source.name
        shutil.copytree(source, copy, ignore=COPY_IGNORE if source == ROOT else shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", "tests"))
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
              "-w", str(wheels), str(copy)], cwd=tmp, env=dict(os.environ), timeout=300)
    built = sorted(wheels.glob("*.whl"))
    assert sorted(w.name.split("-")[0] for w in built) == sorted(DISTRIBUTIONS.values())

    env_dir = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp, env=dict(os.environ))
    python = env_dir / "bin" / "python"
    new_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=tmp, env=dict(os.environ)).stdout.strip())
    (new_site / "_dev_dependencies.pth").write_text(f"{_dependency_view(tmp / 'dependencies')}\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          *map(str, built)], cwd=tmp, env=dict(os.environ), timeout=300)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    work = tmp / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import sb3_snn, sb3_snn_nc64c, sb3_snn_example_backend as e; "
                  "print(sb3_snn.__file__); print(sb3_snn_nc64c.__file__); print(e.__file__)"], cwd=work, env=env)
    for line in where.stdout.split():
        assert Path(line).is_relative_to(new_site), line  # the wheels' copies, not the repository
    return {"bin": env_dir / "bin", "env": env, "work": work}


def test_list_shows_every_registered_piece(venv):
    proc = _run([str(venv["bin"] / "sb3-snn"), "list"], cwd=venv["work"], env=venv["env"], timeout=120)
    out = proc.stdout
    assert "failed to load" not in proc.stderr, proc.stderr
    algos, rest = out.split("policies (")
    policies, backends = rest.split("backends (")
    for name in ("ddqn", "sdn"):
        assert f"  {name} " in algos, out
    for name in ("CVTCPolicy", "SDNPolicy", "SDNCnnPolicy", "ConvertedQPolicy"):
        assert f"  {name} " in policies, out
    assert "sb3_snn.conversion" in policies  # the converted policy's entry point names its module
    for name, distribution in (("nir", "sb3-snn"), ("nc64c", "sb3-snn-nc64c"), ("example", "sb3-snn-example-backend")):
        lines = [line for line in backends.splitlines() if line.strip().startswith(name + " ")]
        assert lines and distribution in lines[0], out


def _latest_zip(work: Path, algo: str) -> Path:
    runs = sorted((work / "logs" / algo).glob("CartPole-v1_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    assert runs, f"no run folder under {work / 'logs' / algo}"
    model = runs[-1] / "CartPole-v1.zip"
    assert model.is_file(), sorted(p.name for p in runs[-1].iterdir())
    return model


def test_train_ddqn_with_the_shipped_config(venv):
    work = venv["work"]
    _run([str(venv["bin"] / "sb3-snn"), "train", "--algo", "ddqn", "--env", "CartPole-v1", "-n", "500",
          "--eval-freq", "-1", "--seed", "0"], cwd=work, env=venv["env"])
    model = _latest_zip(work, "ddqn")
    conf = (model.parent / "CartPole-v1" / "args.yml").read_text()
    assert "sb3_snn/configs/zoo/ddqn.yml" in conf and str(ROOT) not in conf  # the wheel's shipped config


def test_train_sdn_from_a_dqn_teacher(venv):
    work = venv["work"]
    _run([str(venv["bin"] / "sb3-snn"), "train", "--algo", "dqn", "--env", "CartPole-v1", "-n", "500",
          "--eval-freq", "-1", "--seed", "0"], cwd=work, env=venv["env"])
    teacher = _latest_zip(work, "dqn")
    _run([str(venv["bin"] / "sb3-snn"), "train", "--algo", "sdn", "--env", "CartPole-v1", "-n", "500",
          "--eval-freq", "-1", "--seed", "0", "--teacher", str(teacher)], cwd=work, env=venv["env"])
    student = _latest_zip(work, "sdn")
    assert student.stat().st_size > 0
    assert "sb3_snn/configs/zoo/sdn.yml" in (student.parent / "CartPole-v1" / "args.yml").read_text()


def test_short_pipeline_writes_its_table(venv):
    work = venv["work"]
    shutil.copy(ROOT / "tests/data/tiny_pipeline.yml", work / "tiny.yml")
    assert str(ROOT) not in (work / "tiny.yml").read_text()
    proc = _run([str(venv["bin"] / "sb3-snn"), "pipeline", "--config", "tiny.yml", "--out", "out"],
                cwd=work, env=venv["env"], timeout=900)
    table = (work / "out" / "summary.txt").read_text()
    for agent in ("teacher", "sdn", "converted", "cvtc"):
        assert agent in table, table
    summary = json.loads((work / "out" / "summary.json").read_text())
    sources = {row["agent"]: row["energy source"] for row in summary["rows"]}
    assert sources["cvtc"] == sources["sdn"] == sources["converted"] == "nc64c", sources  # temporal model in the wheel
    assert "summary.txt" in proc.stdout


def test_low_latency_conversion_and_nir_file_from_the_wheels(venv):
    """The installed package converts with ``method="low_latency"`` and writes a NIR file at the path given."""
    script = (
        "from stable_baselines3 import DQN\n"
        "from sb3_snn import backends, convert\n"
        "import numpy as np\n"
        "model = DQN('MlpPolicy', 'CartPole-v1', policy_kwargs={'net_arch': [16]}, learning_starts=10**6, seed=0)\n"
        "obs = np.random.default_rng(0).normal(0, 0.5, size=(300, 4)).astype(np.float32)\n"
        "policy = convert(model, calibration_obs=obs, method='low_latency', timesteps=8,\n"
        "                 low_latency={'epochs': 1, 'n_states': 300, 'n_validation': 100})\n"
        "deployment = backends.load('nir').compile(policy.spiking_description(), obs[:32], approximate_reset=True)\n"
        "print(deployment.save('student.nir'))\n"
    )
    _run([str(venv["bin"] / "python"), "-c", script], cwd=venv["work"], env=venv["env"], timeout=600)
    assert (venv["work"] / "student.nir").is_file() and (venv["work"] / "student.nir.json").is_file()

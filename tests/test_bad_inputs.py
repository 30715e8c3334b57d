"""Bad inputs get clear errors, and files from others run no code.

``ROWS`` is one table of (id, callable producing the bad input or action, expected error type, words the
message must contain); :func:`test_bad_input` runs every row. The malicious-zip tests build SB3 zips whose
``data`` carries a cloudpickle payload that would create a marker file, and run them through every path
that reads a model zip (and a zoo folder whose ``config.yml`` would run code): no marker may appear. With
``trusted=True`` SB3's own loader runs, and the marker does appear: the tests can fail.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, PPO, SAC

from sb3_snn import DDQN, SDN, backends, convert, registry
from sb3_snn.backends.base import InvalidOptionError, NonFiniteInputError
from sb3_snn.cli.main import positive_int
from sb3_snn.cli.export import _parse_settings
from sb3_snn.common.models import load_model
from sb3_snn.common.observations import check_finite
from sb3_snn.common.safe_zip import UnsafeEntryError
from sb3_snn.sdn.policies import SDNPolicy
from sb3_snn.sdn.teachers import TeacherMismatchError
from sb3_snn.spiking import SpikingDescription
from sb3_snn.pipeline.config import PipelineConfigError, load_config, validate_settings
from sb3_snn.zoo.experiment import read_zoo_yaml, saved_hyperparams

ROOT = Path(__file__).resolve().parents[1]
TINY_PIPELINE = ROOT / "tests/data/tiny_pipeline.yml"


class _RunsCommand:
    """Unpickling this runs ``touch <marker>`` (``os.system``), the shape of a real attack on SB3's loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _payload(marker: Path) -> str:
    return base64.b64encode(cloudpickle.dumps(_RunsCommand(marker))).decode()


def plant_payload(source: Path, target: Path, marker: Path, how: str) -> Path:
    """Copy the model zip ``source`` to ``target`` with a payload that touches ``marker`` when unpickled.

    :param how: ``"replace"``: every ``:serialized:`` entry's pickle is the payload, its readable keys kept
        (the file looks normal); ``"extra"``: a further entry ``evil`` holds it (nothing readable beside it)
    """
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    if how == "replace":
        for value in data.values():
            if isinstance(value, dict) and ":serialized:" in value:
                value[":serialized:"] = _payload(marker)
    else:
        data["evil"] = {":type:": "<class 'tests.Payload'>", ":serialized:": _payload(marker)}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return target


@dataclass
class Files:
    """Models and files the rows use, built once per session."""

    root: Path
    dqn_zip: Path
    sdn_zip: Path
    sac_zip: Path
    dqn: DQN
    cvtc: DDQN
    sac: SAC
    policy_file: Path
    description: Path

    def cartpole(self) -> gym.Env:
        return gym.make("CartPole-v1")

    def marker(self, name: str) -> Path:
        return self.root / f"MARKER_{name}"


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> Files:
    root = tmp_path_factory.mktemp("bad_inputs")
    env = gym.make("CartPole-v1")
    dqn = DQN("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, learning_starts=0, seed=0)
    dqn.save(root / "dqn.zip")
    sdn = SDN("SDNPolicy", env, policy_kwargs={"net_arch": [8], "n_steps": 2}, seed=0)
    sdn.save(root / "sdn.zip")
    sac = SAC("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [8]}, buffer_size=10, seed=0)
    sac.save(root / "sac.zip")
    cvtc = DDQN("CVTCPolicy", env, policy_kwargs={"net_arch": [8]}, buffer_size=10, seed=0)
    sdn.policy.save(root / "student.pt")
    sdn.policy.spiking_description().to_files(root / "description")
    return Files(root, root / "dqn.zip", root / "sdn.zip", root / "sac.zip", dqn, cvtc, sac, root / "student.pt",
                 root / "description")


def _flip_weight_byte(files: Files) -> None:
    """Flip one byte inside a weight tensor's storage of a policy file, then load it."""
    policy = SDNPolicy.load(files.policy_file, device="cpu")
    weight = next(v for v in policy.state_dict().values() if v.dtype == th.float32 and v.numel() >= 16)
    raw = bytearray(files.policy_file.read_bytes())
    start = bytes(raw).find(weight.contiguous().numpy().tobytes())
    assert start > 0, "weight storage not found in the file"
    raw[start + 2] ^= 0x40  # 0.02 -> a very different float
    flipped = files.root / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    SDNPolicy.load(flipped, device="cpu")


def _truncated_description(files: Files) -> None:
    folder = files.root / "truncated_description"
    SpikingDescription.from_files(files.description).to_files(folder)
    text = (folder / "description.json").read_text()
    (folder / "description.json").write_text(text[: len(text) // 2])
    SpikingDescription.from_files(folder)


def _export_main(*args: str) -> None:
    from sb3_snn.cli.export import main

    main(list(args))


def _zoo_folder(files: Files, name: str, config: str | None = None, model: Path | None = None) -> Path:
    """An rl_zoo3 log folder ``<name>/dqn/CartPole-v1_1/`` holding a model and the given ``config.yml``."""
    run = files.root / name / "dqn" / "CartPole-v1_1"
    (run / "CartPole-v1").mkdir(parents=True, exist_ok=True)
    (run / "CartPole-v1.zip").write_bytes((model or files.dqn_zip).read_bytes())
    if config is not None:
        (run / "CartPole-v1" / "config.yml").write_text(config)
    return run / "CartPole-v1"


def _unknown_policy_class(files: Files) -> None:
    with zipfile.ZipFile(files.dqn_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    data["policy_class"] = {":type:": "<class 'type'>", ":serialized:": "AAAA", "__module__": "os",
                            "run": "<function Shell.run at 0x7f0000000000>"}
    entries["data"] = json.dumps(data).encode()
    target = files.root / "unknown_policy_class.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    load_model(target)


def _nan_rows(n_bad: int) -> np.ndarray:
    obs = np.zeros((8, 4))
    obs[:n_bad, 1] = np.nan
    obs[n_bad - 1, 2] = np.inf
    return obs


#: (id, callable taking the session's :class:`Files` that produces the bad input or action, error type,
#: words the message must contain). Rows for pipeline configs go after the marker comment at the end.
ROWS: list[tuple[str, Callable[[Files], Any], type[BaseException], list[str]]] = [
    ("export_policy_file_is_sb3_zip",
     lambda f: _export_main("--backend", "nir", "--policy-file", str(f.dqn_zip), "--out", str(f.root / "out")),
     SystemExit, ["dqn.zip", "Stable-Baselines3 model zip", "not an sb3-snn policy file"]),
    ("convert_ppo_box", lambda f: convert(PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=32, device="cpu"),
                                          calibration_obs=np.zeros((4, 3))),
     ValueError, ["Discrete actions", "deterministic actor of TD3, DDPG or SAC", "got PPO", "Box"]),
    ("sdn_teacher_sac_for_cartpole", lambda f: SDN("SDNPolicy", f.cartpole(), teacher=f.sac_zip),
     TeacherMismatchError, ["teacher (SAC)", "does not match the student's"]),
    ("convert_cvtc_dqn", lambda f: convert(f.cvtc, calibration_obs=np.zeros((4, 4))),
     ValueError, ["CVTCPolicy", "already a spiking network", "not an ANN"]),
    ("convert_env_mismatch", lambda f: convert(f.dqn, env=gym.make("Acrobot-v1"), n_calibration=8),
     ValueError, ["observation space mismatch", "(4,)", "(6,)"]),
    ("convert_n_calibration_zero", lambda f: convert(f.dqn, env=f.cartpole(), n_calibration=0),
     ValueError, ["n_calibration", "at least 1", "got 0"]),
    ("with_settings_zero_timesteps", lambda f: convert(f.dqn, calibration_obs=np.zeros((4, 4))).with_settings(0),
     ValueError, ["timesteps", "at least 1", "got 0"]),
    ("sdn_load_dqn_zip", lambda f: SDN.load(f.dqn_zip), ValueError, ["dqn.zip", "DQNPolicy", "SDN does not use", "SDNPolicy"]),
    ("ddqn_load_sdn_zip", lambda f: DDQN.load(f.sdn_zip), ValueError, ["sdn.zip", "SDNPolicy", "DDQN does not use"]),
    ("sdn_policy_zero_steps",
     lambda f: SDNPolicy(f.dqn.observation_space, f.dqn.action_space, lambda _: 1e-3, n_steps=0),
     ValueError, ["n_steps", "at least 1", "0"]),
    ("export_set_wrong_type", lambda f: backends.load("nc64c").check_options(_parse_settings(["weight_bits=abc"])),
     InvalidOptionError, ["weight_bits", "integer", "'abc'"]),
    ("description_json_truncated", _truncated_description, ValueError, ["description.json", "not valid JSON"]),
    ("unknown_policy_plural", lambda f: registry.get_policy("Nope"), registry.UnknownPluginError, ["unknown policy 'Nope'"]),
    ("policy_file_byte_flipped", _flip_weight_byte, ValueError, ["flipped.pt", "corrupted", "checksum"]),
    ("backend_compile_nan_calibration",
     lambda f: backends.load("nir").compile(SpikingDescription.from_files(f.description), _nan_rows(3)),
     NonFiniteInputError, ["3 of 8 rows", "NaN or infinite"]),
    ("check_finite_inf", lambda f: check_finite(np.array([[0.0, np.inf], [1.0, 2.0]]), "obs"),
     ValueError, ["obs", "1 of 2 rows"]),
    ("convert_nan_calibration", lambda f: convert(f.dqn, calibration_obs=_nan_rows(2)),
     ValueError, ["calibration_obs", "2 of 8 rows"]),
    ("zip_with_unknown_pickled_entry",
     lambda f: load_model(plant_payload(f.dqn_zip, f.root / "extra.zip", f.marker("row"), "extra")),
     UnsafeEntryError, ["extra.zip", "'evil'", "trusted=True"]),
    ("zip_policy_class_outside_allow_list", _unknown_policy_class, UnsafeEntryError, ["policy_class", "os.Shell"]),
    ("zoo_config_yml_python_tag",
     lambda f: read_zoo_yaml(_zoo_folder(f, "tagged", "a: !!python/object/apply:os.system ['true']\n") / "config.yml"),
     ValueError, ["config.yml", "refusing to read it"]),
    ("zoo_vecnormalize_untrusted", lambda f: saved_hyperparams(_zoo_folder(f, "normalized", "normalize: true\n")),
     ValueError, ["vecnormalize.pkl", "pickle", "--trust-pickle"]),
    ("zoo_normalize_code_string",
     lambda f: saved_hyperparams(_zoo_folder(f, "evalled", "normalize: \"__import__('os').getcwd()\"\n")),
     ValueError, ["normalize", "not a dict of literal values"]),
    ("zoo_wrapper_outside_packages",
     lambda f: saved_hyperparams(_zoo_folder(f, "wrapped", "env_wrapper: os.system\n")),
     ValueError, ["env_wrapper", "'os.system'", "--trust-pickle"]),
    ("pipeline_unknown_section",
     lambda f: validate_settings({**load_config("CartPole-v1", TINY_PIPELINE), "sdnn": {"n_timesteps": 5}}),
     PipelineConfigError, ["sdnn: unknown key", "did you mean 'sdn'?", "allowed:"]),
    ("pipeline_unknown_key",
     lambda f: (lambda s: validate_settings({**s, "sdn": {**s["sdn"], "n_timestep": 5}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["sdn.n_timestep", "did you mean 'n_timesteps'?"]),
    ("pipeline_wrong_type",
     lambda f: (lambda s: validate_settings({**s, "evaluation": {**s["evaluation"], "episodes": "ten"}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["evaluation.episodes", "expected an integer", "'ten'"]),
    ("pipeline_episodes_zero",
     lambda f: (lambda s: validate_settings({**s, "evaluation": {**s["evaluation"], "episodes": 0}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["evaluation.episodes", "must be >= 1", "found 0"]),
    ("pipeline_negative_steps",
     lambda f: (lambda s: validate_settings({**s, "teacher": {**s["teacher"], "n_timesteps": -5}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["teacher.n_timesteps", "must be >= 1", "-5"]),
    ("pipeline_unknown_agent",
     lambda f: (lambda s: validate_settings({**s, "export": {**s["export"], "agents": ["sdn", "convertd"]}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["export.agents", "'convertd'", "did you mean 'converted'?", "allowed: sdn, converted, cvtc"]),
    ("pipeline_unknown_backend",
     lambda f: (lambda s: validate_settings({**s, "export": {**s["export"], "backend": "nirr"}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["export.backend", "'nirr'", "did you mean 'nir'?", "installed:"]),
    ("pipeline_unknown_backend_option",
     lambda f: (lambda s: validate_settings({**s, "export": {**s["export"], "backend": "nir", "options": {"dtt": 1e-3}}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["export.options.dtt", "backend 'nir'", "did you mean 'dt'?", "its options:"]),
    ("pipeline_backend_option_value",
     lambda f: (lambda s: validate_settings({**s, "export": {**s["export"], "backend": "nir", "options": {"dt": -1}}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["export.options", "dt=-1", "> 0"]),
    ("pipeline_unknown_env_section", lambda f: load_config("CartPol-v1", TINY_PIPELINE),
     PipelineConfigError, ["CartPol-v1", "did you mean 'CartPole-v1'?", "sections: CartPole-v1"]),
    ("evaluate_episodes_zero", lambda f: positive_int("0"), argparse.ArgumentTypeError, ["must be >= 1", "found 0"]),
    ("nir_dt_negative", lambda f: backends.load("nir").compile(f.description, np.zeros((2, 4)), dt=-1.0),
     ValueError, ["nir backend option dt=-1.0", "must be a finite number > 0"]),
    ("nir_dt_negative_constructor", lambda f: backends.load("nir", dt=0), ValueError, ["dt=0", "> 0"]),
    # the non-class plugin rows need an installed distribution: tests/test_registry.py builds and installs one
    # -- pipeline rows --
    ("pipeline_unknown_conversion_method",
     lambda f: (lambda s: validate_settings({**s, "conversion": {**s["conversion"], "method": "low_latancy"}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError,
     ["conversion.method", "'low_latancy'", "did you mean 'low_latency'?", "allowed: paper, low_latency"]),
    ("pipeline_conversion_t_neither_fixed_nor_goal",
     lambda f: (lambda s: validate_settings({**s, "evaluation": {k: v for k, v in s["evaluation"].items()
                                                                 if k != "conversion_timesteps"}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["evaluation.conversion_timesteps: missing", "conversion.goal"]),
    ("pipeline_conversion_goal_above_one",
     lambda f: (lambda s: validate_settings({**s, "conversion": {**s["conversion"], "goal": 99}}))(
         load_config("CartPole-v1", TINY_PIPELINE)),
     PipelineConfigError, ["conversion.goal", "99"]),
]


@pytest.mark.parametrize("make, error, words", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input(files, make, error, words):
    with pytest.raises(error) as caught:
        make(files)
    message = str(caught.value)
    missing = [word for word in words if word not in message]
    assert not missing, f"message lacks {missing}: {message}"


# ---- malicious zips against every load path ----

def _python_loads(files: Files) -> dict[str, Callable[[Path], Any]]:
    return {
        "DDQN.load": lambda path: DDQN.load(path),
        "SDN.load": lambda path: SDN.load(path),
        "SDN(teacher=path)": lambda path: SDN("SDNPolicy", files.cartpole(), teacher=path),
        "load_model": lambda path: load_model(path),
    }


@pytest.mark.parametrize("path_name", ["DDQN.load", "SDN.load", "SDN(teacher=path)", "load_model"])
def test_payload_in_readable_entries_is_ignored(files, path_name):
    """Every pickled entry replaced by the payload, readable keys intact: a clean load, no code run."""
    marker = files.marker(f"replace_{path_name}")
    source = files.sdn_zip if path_name == "SDN.load" else files.dqn_zip
    evil = plant_payload(source, files.root / f"replace_{path_name}.zip", marker, "replace")
    loaded = _python_loads(files)[path_name](evil)
    assert not marker.exists(), f"{path_name} ran the file's code"
    model = getattr(loaded, "policy", None) and loaded
    if model is not None:
        action, _ = model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
        assert int(action) in (0, 1)


@pytest.mark.parametrize("path_name", ["DDQN.load", "SDN.load", "SDN(teacher=path)", "load_model"])
def test_payload_in_unknown_entry_is_refused(files, path_name):
    marker = files.marker(f"extra_{path_name}")
    source = files.sdn_zip if path_name == "SDN.load" else files.dqn_zip
    evil = plant_payload(source, files.root / f"extra_{path_name}.zip", marker, "extra")
    with pytest.raises(UnsafeEntryError, match="entry 'evil'"):
        _python_loads(files)[path_name](evil)
    assert not marker.exists(), f"{path_name} ran the file's code"


@pytest.mark.parametrize("path_name", ["DDQN.load", "SDN.load", "load_model"])
def test_trusted_runs_sb3_loader(files, path_name):
    """The opt-in: SB3's own loader unpickles, so the payload runs (in a tmp dir) — the tests above can fail."""
    marker = files.marker(f"trusted_{path_name}")
    source = files.sdn_zip if path_name == "SDN.load" else files.dqn_zip
    evil = plant_payload(source, files.root / f"trusted_{path_name}.zip", marker, "replace")
    load = {"DDQN.load": DDQN.load, "SDN.load": SDN.load, "load_model": load_model}[path_name]
    try:
        load(evil, trusted=True)
    except Exception:  # the payload returns an int where SB3 expects a class: the load fails after it ran
        pass
    assert marker.exists()


def _cli(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sb3_snn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_evaluate_zoo_folder_with_malicious_model(files):
    marker = files.marker("evaluate")
    evil = plant_payload(files.dqn_zip, files.root / "evaluate.zip", marker, "extra")
    _zoo_folder(files, "evil_model", model=evil)
    proc = _cli(["evaluate", "--algo", "dqn", "--env", "CartPole-v1", "-f", str(files.root / "evil_model"),
                 "--episodes", "1"], files.root)
    assert not marker.exists()
    assert proc.returncode != 0 and "entry 'evil'" in proc.stderr and "--trust-pickle" in proc.stderr, proc.stderr[-2000:]


def test_evaluate_zoo_folder_with_malicious_config_yml(files):
    marker = files.marker("config_yml")
    config = f"frame_stack: !!python/object/apply:os.system [{json.dumps('touch ' + shlex.quote(str(marker)))}]\n"
    _zoo_folder(files, "evil_config", config)
    proc = _cli(["evaluate", "--algo", "dqn", "--env", "CartPole-v1", "-f", str(files.root / "evil_config"),
                 "--episodes", "1"], files.root)
    assert not marker.exists()
    assert proc.returncode != 0 and "config.yml" in proc.stderr and "refusing" in proc.stderr, proc.stderr[-2000:]


def test_convert_model_path_with_malicious_zip(files):
    marker = files.marker("convert")
    evil = plant_payload(files.dqn_zip, files.root / "convert.zip", marker, "extra")
    proc = _cli(["convert", "--algo", "dqn", "--env", "CartPole-v1", "--model-path", str(evil), "--episodes", "1",
                 "--output-dir", str(files.root / "convert_out")], files.root)
    assert not marker.exists()
    assert proc.returncode != 0 and "entry 'evil'" in proc.stderr, proc.stderr[-2000:]


def test_pipeline_teacher_with_malicious_zip(files, tmp_path):
    marker = files.marker("pipeline_teacher")
    evil = plant_payload(files.dqn_zip, files.root / "pipeline_teacher.zip", marker, "extra")
    proc = _cli(["pipeline", "--config", str(TINY_PIPELINE), "--teacher", str(evil), "--teacher-algo", "dqn",
                 "--out", str(tmp_path / "run")], tmp_path)
    assert not marker.exists()
    assert proc.returncode != 0 and "entry 'evil'" in proc.stderr, proc.stderr[-2000:]


def test_pipeline_rerun_over_planted_checkpoint(files, tmp_path):
    """A run killed mid-way, then someone else's ``checkpoint.zip`` where the rerun resumes from."""
    import signal
    import time

    marker = files.marker("pipeline_checkpoint")
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sb3_snn", "pipeline", "--config", str(TINY_PIPELINE), "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "teacher/started.json").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "teacher/started.json").is_file() and not (out / "teacher/stage.json").exists()

    planted = plant_payload(files.dqn_zip, tmp_path / "checkpoint.zip", marker, "extra")
    with zipfile.ZipFile(planted) as archive:  # a checkpoint part-way through the teacher's training
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    data["num_timesteps"] = 500
    entries["data"] = json.dumps(data).encode()
    # where the teacher stage's zoo run keeps its checkpoint (and where earlier layouts kept it)
    for folder in ("teacher/zoo/dqn/CartPole-v1_1/checkpoint", "teacher/checkpoint"):
        (out / folder).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out / folder / "checkpoint.zip", "w") as archive:
            for name, content in entries.items():
                archive.writestr(name, content)
    try:
        rerun = _cli(["pipeline", "--config", str(TINY_PIPELINE), "--out", str(out)], tmp_path, timeout=180)
        output, code = rerun.stderr, rerun.returncode
    except subprocess.TimeoutExpired as expired:  # it went on training: the checkpoint was not refused
        output, code = str(expired.stderr or ""), None
    assert not marker.exists(), "the pipeline ran the planted checkpoint's code"
    assert code not in (None, 0) and "entry 'evil'" in output, output[-2000:]

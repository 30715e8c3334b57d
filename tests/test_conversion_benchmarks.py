"""The CartPole conversion benchmark's teacher bookkeeping: presets and provenance (no training here)."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_conversion_cartpole import teacher_note, teacher_provenance
from bench_conversion_cartpole_train import PRESETS, ZOO_CARTPOLE, run_dir


def test_zoo_preset_is_rl_zoo3s_cartpole_dqn() -> None:
    """The ``zoo`` preset must be rl_zoo3's tuned CartPole-v1 DQN, not a look-alike."""
    rl_zoo3 = pytest.importorskip("rl_zoo3")
    zoo = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml").read_text())["CartPole-v1"]
    total, hyperparams = PRESETS["zoo"]
    assert total == int(float(zoo["n_timesteps"])) and zoo["policy"] == "MlpPolicy"
    expected = {k: v for k, v in zoo.items() if k not in ("n_timesteps", "policy", "policy_kwargs")}
    assert {k: v for k, v in hyperparams.items() if k != "policy_kwargs"} == pytest.approx(expected)
    net_arch = hyperparams["policy_kwargs"]["net_arch"]
    assert list(hyperparams["policy_kwargs"]) == ["net_arch"]
    assert zoo["policy_kwargs"].replace(" ", "") == f"dict(net_arch={net_arch})".replace(" ", "")
    assert ZOO_CARTPOLE is hyperparams


def test_presets_differ_from_zoo_only_where_documented() -> None:
    """Each variant changes what its name says and nothing else."""
    changed = {name: {k for k in ZOO_CARTPOLE if params[k] != ZOO_CARTPOLE[k]} for name, (_, params) in PRESETS.items()}
    assert changed == {"zoo": set(), "zoo-long": set(), "zoo-64": {"policy_kwargs"}, "zoo-gamma0.9": {"gamma"},
                       "zoo-gamma0.95": {"gamma"}, "zoo-gamma0.97": {"gamma"}}
    assert {name: params["gamma"] for name, (_, params) in PRESETS.items() if name.startswith("zoo-gamma")} == {
        "zoo-gamma0.9": 0.9, "zoo-gamma0.95": 0.95, "zoo-gamma0.97": 0.97}
    assert PRESETS["zoo-long"][0] > PRESETS["zoo"][0]


def test_provenance_from_train_json(tmp_path: Path) -> None:
    """A ``train.json`` beside the model is the teacher's record (the curve left out)."""
    out = run_dir(tmp_path, "zoo", 3)
    out.mkdir(parents=True)
    record = {"preset": "zoo", "seed": 3, "hyperparameters": ZOO_CARTPOLE, "command": "train --preset zoo --seed 3",
              "total_timesteps": 50_000, "wall_seconds": 60.0, "best_model": {"step": 40_000, "mean_return": 500.0},
              "curve": [[2500, 10.0]]}
    (out / "train.json").write_text(json.dumps(record))
    info = teacher_provenance(out / "best_model.zip")
    assert info["seed"] == 3 and "curve" not in info and info["model"] == "best_model"
    note = teacher_note(info)
    assert "seed 3" in note and "best_model = step 40000" in note and "train --preset zoo --seed 3" in note


def test_provenance_from_rl_zoo3_run_folder(tmp_path: Path) -> None:
    """An ``sb3-snn train`` / rl_zoo3 run folder (OrderedDict YAML, read without unsafe loading)."""
    numpy = pytest.importorskip("numpy")
    run = tmp_path / "dqn" / "CartPole-v1_2"
    (run / "CartPole-v1").mkdir(parents=True)
    args = OrderedDict([("algo", "dqn"), ("env", "CartPole-v1"), ("conf_file", "sb3_snn/configs/zoo/dqn.yml"),
                        ("log_folder", "logs"), ("seed", 0), ("eval_freq", 2500), ("eval_episodes", 10)])
    (run / "CartPole-v1" / "args.yml").write_text(yaml.dump(args))
    (run / "CartPole-v1" / "config.yml").write_text(yaml.dump(OrderedDict([("gamma", 0.99), ("batch_size", 64)])))
    numpy.savez(run / "evaluations.npz", timesteps=numpy.array([2500, 5000, 7500]),
                results=numpy.array([[100.0, 120.0], [500.0, 500.0], [500.0, 500.0]]))
    info = teacher_provenance(run / "best_model.zip")
    assert info["seed"] == 0 and info["hyperparameters"] == {"gamma": 0.99, "batch_size": 64}
    assert info["best_model"] == {"step": 5000, "mean_return": 500.0}  # the first of a tie, as EvalCallback keeps
    assert "--seed 0" in info["command"] and "best_model = step 5000" in teacher_note(info)


def test_provenance_unknown(tmp_path: Path) -> None:
    """Without records the note says so instead of guessing."""
    assert "unknown" in teacher_note(teacher_provenance(tmp_path / "model.zip"))


def test_teacher_screen_row(tmp_path: Path) -> None:
    """The teacher screen converts a (tiny, untrained) DQN and reports agreement per percentile, rounding and T."""
    from stable_baselines3 import DQN

    from bench_conversion_cartpole_teachers import screen_teacher

    path = tmp_path / "tiny.zip"
    DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0, device="cpu").save(path)
    row = screen_teacher(str(path), timesteps=[5, 20], n_frames=1200, percentiles=[99.9, 100.0], n_calibration=50,
                         seed=0)
    keys = [f"p{p} {r} T={t}" for p in (99.9, 100.0) for r in ("floor", "round") for t in (5, 20)]
    assert all(0.0 <= row[k] <= 1.0 for k in keys)
    assert 0.0 <= row["p99.9 clipped ANN"] <= 1.0 and row["Q min"] <= row["Q max"]
    # lambda of every layer: the calibration maximum (p 100) is at least its 99.9th percentile
    assert len(row["p99.9 lambdas"]) == 2
    assert all(top >= p for top, p in zip(row["p100.0 lambdas"], row["p99.9 lambdas"], strict=True))

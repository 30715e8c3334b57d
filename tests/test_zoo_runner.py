"""The ``sb3-snn`` runner on rl_zoo3: train (zoo folder layout, TensorBoard), evaluate, usage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli, scalar_tags

TINY_DDQN = ["learning_starts:100", "train_freq:16", "gradient_steps:4", "policy_kwargs:dict(net_arch=[16])"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny DDQN run through ``sb3-snn train`` with the project's zoo config."""
    work = tmp_path_factory.mktemp("runner")
    run_cli(
        ["-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-conf", "ddqn",  # the shipped config by name
         "-n", "1200", "-tb", "tb", "--seed", "0", "--eval-freq", "600", "--eval-episodes", "2",
         "--log-interval", "1", "-params", *TINY_DDQN],
        cwd=work,
    )
    return work


@pytest.mark.expensive  # a CLI training
def test_train_writes_the_rl_zoo_layout(trained):
    run = trained / "logs/ddqn/CartPole-v1_1"
    for name in ("CartPole-v1.zip", "best_model.zip", "evaluations.npz", "CartPole-v1/config.yml",
                 "CartPole-v1/args.yml", "CartPole-v1/command.txt"):
        assert (run / name).is_file(), name


@pytest.mark.expensive  # a CLI training
def test_train_tensorboard_has_training_scalars(trained):
    runs = sorted(p.name for p in (trained / "tb/CartPole-v1").iterdir())
    assert runs == ["DDQN_1"]
    tags = scalar_tags(trained / "tb/CartPole-v1/DDQN_1")
    for tag in ("train/loss", "rollout/exploration_rate", "rollout/ep_rew_mean", "eval/mean_reward"):
        assert tag in tags, f"{tag} missing from {sorted(tags)}"
    assert all(v == v for v in tags["train/loss"])  # no NaN


@pytest.mark.expensive  # a CLI training
def test_evaluate_prints_mean_std_and_writes_json(trained):
    proc = run_cli(["-m", "sb3_snn", "evaluate", "--algo", "ddqn", "--env", "CartPole-v1", "-f", "logs",
                    "--episodes", "3", "--json", "eval/out.json"], cwd=trained)
    assert "±" in proc.stdout and "over 3 episodes" in proc.stdout
    record = json.loads((trained / "eval/out.json").read_text())
    assert len(record["rewards"]) == 3 and record["deterministic"] is True
    assert record["mean_reward"] == pytest.approx(sum(record["rewards"]) / 3)


def test_evaluate_missing_experiment_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sb3_snn", "evaluate", "--algo", "ddqn", "--env", "CartPole-v1",
                           "-f", "nowhere"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "no trained ddqn agent for CartPole-v1" in proc.stderr


@pytest.mark.expensive  # a CLI training
def test_train_uses_project_config_by_default(tmp_path):
    """Without -conf the runner finds sb3_snn/configs/zoo/ddqn.yml (rl_zoo3 ships none for ddqn)."""
    run_cli(["-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-n", "200", "--eval-freq", "-1",
             "--seed", "1", "-params", *TINY_DDQN], cwd=tmp_path)
    config = (tmp_path / "logs/ddqn/CartPole-v1_1/CartPole-v1/config.yml").read_text()
    assert "target_update_interval" in config  # a key only the project's section sets


def test_evaluate_zero_episodes_is_a_usage_error(tmp_path):
    """``--episodes 0`` would print ``nan ± nan``: argparse refuses it before anything loads."""
    proc = subprocess.run([sys.executable, "-m", "sb3_snn", "evaluate", "--algo", "ddqn", "--env", "CartPole-v1",
                           "--episodes", "0"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "--episodes/-n: must be >= 1, found 0" in proc.stderr


def test_console_script_and_usage(tmp_path):
    exe = shutil.which("sb3-snn", path=str(Path(sys.executable).parent))
    assert exe, "the sb3-snn console script is not installed"
    proc = subprocess.run([exe], capture_output=True, text=True)
    assert proc.returncode == 2 and "train" in proc.stdout and "evaluate" in proc.stdout
    proc = subprocess.run([exe, "bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown command 'bogus'" in proc.stderr


@pytest.mark.expensive  # a CLI training
def test_hyperparameter_search_works_for_ddqn(tmp_path):
    """-optimize needs a sampler for the new algorithm: DDQN borrows DQN's."""
    proc = run_cli(["-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-optimize", "--n-trials", "2",
                    "-n", "400", "--sampler", "random", "--pruner", "none", "--eval-episodes", "1",
                    "--n-evaluations", "1", "--no-optim-plots", "--seed", "0"], cwd=tmp_path)
    assert "Number of finished trials:  2" in proc.stdout
    assert list((tmp_path / "logs/ddqn").glob("report_CartPole-v1_2-trials-*.csv"))

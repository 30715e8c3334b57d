"""``sb3-snn convert``: the runner command end to end on a tiny untrained DQN (fast)."""

from __future__ import annotations

import json

import torch as th
from stable_baselines3 import DQN

from sb3_snn.conversion import ConvertedQPolicy
from sb3_snn.conversion.evaluation import sweep
from sb3_snn.spiking import SpikingDescription
from sb3_snn.cli.main import main
from sb3_snn.cli.convert import load_settings


def test_convert_command_from_model_path(tmp_path) -> None:
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=0)
    model.save(tmp_path / "dqn.zip")
    out = tmp_path / "out"
    code = main([
        "convert", "--algo", "dqn", "--env", "CartPole-v1", "--model-path", str(tmp_path / "dqn.zip"),
        "--timesteps", "5", "10", "--readout", "robust", "rate", "--episodes", "1", "--max-episode-steps", "15",
        "--n-calibration", "50", "--output-dir", str(out), "-tb", str(tmp_path / "tb"),
    ])
    assert code == 0
    document = json.loads((out / "conversion.json").read_text())
    rows = document["results"]
    assert [(r["timesteps"], r["readout"]) for r in rows] == [
        (0, "ann"), (5, "robust"), (5, "rate"), (10, "robust"), (10, "rate")]
    assert all(0.0 <= r["conversion_rate"] <= 1.0 for r in rows)
    assert rows[1]["synops_per_action"] > 0
    assert (out / "conversion.csv").read_text().startswith("timesteps,readout,rounding,mean_score")
    policy = ConvertedQPolicy.load(out / "converted_policy.pt", device="cpu")
    assert policy.timesteps == 5 and policy.readout == "robust"
    assert SpikingDescription.from_files(out / "spiking_description").timesteps == 5
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))


def test_convert_command_sweeps_roundings(tmp_path) -> None:
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=0)
    model.save(tmp_path / "dqn.zip")
    out = tmp_path / "out"
    assert main([
        "convert", "--algo", "dqn", "--env", "CartPole-v1", "--model-path", str(tmp_path / "dqn.zip"),
        "--timesteps", "8", "--readout", "robust", "--rounding", "round", "floor", "--episodes", "1",
        "--max-episode-steps", "10", "--n-calibration", "50", "--output-dir", str(out),
    ]) == 0
    rows = json.loads((out / "conversion.json").read_text())["results"]
    assert [(r["timesteps"], r["rounding"]) for r in rows[1:]] == [(8, "round"), (8, "floor")]
    assert "rounding" in (out / "conversion.csv").read_text().splitlines()[0]
    assert ConvertedQPolicy.load(out / "converted_policy.pt", device="cpu").rounding == "round"  # the first one is saved


def test_settings_sections() -> None:
    assert load_settings("sb3_snn/configs/conversion.yml", "CartPole-v1")["timesteps"] == [50, 100, 200, 500]
    assert load_settings("sb3_snn/configs/conversion.yml", "SpaceInvadersNoFrameskip-v4")["max_episode_steps"] == 4500
    assert load_settings("sb3_snn/configs/conversion.yml", "Acrobot-v1")["percentile"] == 99.9


def test_sweep_rows_and_conversion_rate() -> None:
    import gymnasium as gym

    from sb3_snn import convert

    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=1)
    policy = convert(model, n_calibration=64)
    env = gym.make("CartPole-v1")
    results = sweep(policy, model, env, timesteps=[200], readouts=["robust"], n_episodes=1, epsilon=0.0,
                    max_episode_steps=20)
    ann, snn = results
    assert ann.readout == "ann" and ann.conversion_rate == 1.0
    assert snn.n_steps == ann.n_steps or snn.n_steps <= 20
    assert snn.conversion_rate > 0.5 and snn.firing_rates
    th.testing.assert_close(th.tensor(snn.ann_macs), th.tensor(4 * 16 + 16 * 2))

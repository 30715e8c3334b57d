"""Shared fixtures: run the CLI in a subprocess, read TensorBoard event files back, one trained CartPole teacher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m sb3_snn ARGS`` (or any ``-m module``) and fail the test with its output on error."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(args)}\n"
                    f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def scalar_tags(event_dir: Path) -> dict[str, list[float]]:
    """Every scalar tag in the TensorBoard event files under ``event_dir``, with its values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(event_dir.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {event_dir}"
    tags: dict[str, list[float]] = {}
    for file in files:
        accumulator = EventAccumulator(str(file))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            tags.setdefault(tag, []).extend(event.value for event in accumulator.Scalars(tag))
    return tags


@pytest.fixture
def cli():
    """The :func:`run_cli` helper."""
    return run_cli


#: The shared teacher: a small DQN on CartPole-v1 trained 2k steps (seconds on one core). It is barely trained
#: (greedy return ~10): enough for tests of agreement, conversion and distillation mechanics, not of skill.
TEACHER_KWARGS = dict(learning_starts=200, train_freq=4, target_update_interval=200, exploration_fraction=0.5,
                      policy_kwargs=dict(net_arch=[64, 64]), seed=0, device="cpu")
TEACHER_STEPS = 2000


@pytest.fixture(scope="session")
def cartpole_teacher_zip(tmp_path_factory) -> Path:
    """The zip of a DQN trained once per session on CartPole-v1 (:data:`TEACHER_KWARGS`, :data:`TEACHER_STEPS`)."""
    from stable_baselines3 import DQN

    path = tmp_path_factory.mktemp("teacher") / "dqn_cartpole.zip"
    DQN("MlpPolicy", "CartPole-v1", **TEACHER_KWARGS).learn(TEACHER_STEPS).save(path)
    return path


@pytest.fixture
def cartpole_teacher(cartpole_teacher_zip):
    """The shared teacher loaded afresh for each test (with a CartPole-v1 env), so no test sees another's changes."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    return DQN.load(cartpole_teacher_zip, env=gym.make("CartPole-v1"), device="cpu")

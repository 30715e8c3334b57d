"""Exact resumption: checkpoints between rollouts, one step axis across resumes, ``sb3-snn train --resume`` after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sb3_snn import DDQN
from sb3_snn.configs import zoo_config
from sb3_snn.pipeline.steps import learning_curve
from sb3_snn.zoo.checkpoint import BUFFER, CheckpointCallback, checkpoint_timesteps
from sb3_snn.zoo.training import train_from_zoo

from conftest import run_cli

#: A DDQN that trains every 3 steps (rollouts that do not line up with the checkpoint interval).
TINY = {"learning_starts": 50, "train_freq": 3, "gradient_steps": 1, "policy_kwargs": "dict(net_arch=[16])",
        "buffer_size": 5000, "exploration_fraction": 0.5}


def _monitor_ends(path: Path) -> list[int]:
    """The cumulative step at which each episode of a Monitor file ends."""
    lengths = [int(line.split(",")[1]) for line in path.read_text().splitlines()[2:]]
    return list(np.cumsum(lengths))


def test_every_checkpoint_holds_exactly_num_timesteps_transitions(tmp_path):
    """SB3 stores a step's transition after the callbacks' ``on_step``; checkpoints taken between rollouts hold
    all of them: the buffer's position equals ``num_timesteps`` at every checkpoint."""
    seen: list[tuple[int, int]] = []

    class Recording(CheckpointCallback):
        def _on_rollout_start(self) -> None:
            before = checkpoint_timesteps(self.folder)
            super()._on_rollout_start()
            step = checkpoint_timesteps(self.folder)
            if step != before:
                with np.load(self.folder / BUFFER.format(step)) as saved:
                    seen.append((step, int(saved["_pos"])))

    model = DDQN("MlpPolicy", "CartPole-v1", learning_starts=50, train_freq=3, buffer_size=5000, seed=0,
                 policy_kwargs={"net_arch": [8]})
    model.learn(700, callback=Recording(tmp_path, every=100))
    assert len(seen) >= 5
    assert all(pos == step for step, pos in seen), seen
    assert all(step % 3 == 0 for step, _ in seen)  # at rollout boundaries


def test_resume_continues_steps_buffer_curve_and_tensorboard(tmp_path):
    """A rerun of a finished run resumes from its last checkpoint: the same experiment folder, the step count
    and updates continue to the requested total, episodes after the checkpoint are not counted twice, and the
    TensorBoard run is the same one."""
    def train():
        return train_from_zoo("ddqn", "CartPole-v1", tmp_path, zoo_config("ddqn"), 1500, hyperparams=TINY,
                              checkpoint_every=400, tensorboard_log=str(tmp_path / "tb"), eval_freq=500, eval_episodes=2)

    first = train()
    folder = first.path
    checkpoint = checkpoint_timesteps(folder / "checkpoint")
    assert first.resumed_from == 0 and 1200 <= checkpoint < 1500
    updates = first.model._n_updates
    second = train()
    assert second.path == folder and second.resumed_from == checkpoint
    assert second.model.num_timesteps == 1500
    assert second.model._n_updates == updates  # the same number of gradient steps as the uninterrupted run
    assert second.model.replay_buffer.pos == 1500
    ends = _monitor_ends(folder / "0.monitor.csv")
    assert ends == sorted(set(ends)) and checkpoint in ends  # the resume cut the episode in progress at the checkpoint
    assert 1500 - 500 < ends[-1] <= 1500
    assert learning_curve(folder)[-1][0] == ends[-1]
    assert [p.name for p in (tmp_path / "tb/CartPole-v1").iterdir()] == ["DDQN_1"]
    with np.load(folder / "evaluations.npz") as evaluations:
        assert list(evaluations["timesteps"]) == [500, 1000, 1500]  # earlier evaluations kept, none twice
    assert not (tmp_path / "zoo/ddqn/CartPole-v1_2").exists()


def test_train_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "--resume"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cannot resume ddqn on CartPole-v1" in proc.stderr and "no such experiment folder" in proc.stderr


@pytest.mark.expensive  # two CLI trainings
def test_train_resume_after_kill_9(tmp_path):
    """``kill -9`` of ``sb3-snn train`` after its first checkpoint, then ``--resume``: the same experiment folder,
    the step count and buffer continue, and the run ends at ``-n`` with the updates of an uninterrupted run."""
    command = [sys.executable, "-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-n", "3000",
               "--seed", "0", "--eval-freq", "-1", "--checkpoint-freq", "500", "-tb", "tb", "-params",
               "learning_starts:100", "train_freq:4", "gradient_steps:1", "policy_kwargs:dict(net_arch=[16])"]
    run = tmp_path / "logs/ddqn/CartPole-v1_1"
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while checkpoint_timesteps(run / "checkpoint") == 0 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = checkpoint_timesteps(run / "checkpoint")
    assert 0 < killed_at < 3000 and not (run / "CartPole-v1.zip").exists(), "the run was not killed mid-training"

    stdout = run_cli([*command[1:], "--resume"], cwd=tmp_path).stdout
    assert f"Resuming {Path('logs/ddqn/CartPole-v1_1')}" in stdout
    assert sorted(p.name for p in (tmp_path / "logs/ddqn").iterdir()) == ["CartPole-v1_1"]
    with zipfile.ZipFile(run / "CartPole-v1.zip") as archive:
        data = json.loads(archive.read("data"))
    assert data["num_timesteps"] == 3000
    assert data["_n_updates"] == (3000 - 100) // 4  # one update per 4-step rollout after learning_starts, none lost
    last = checkpoint_timesteps(run / "checkpoint")
    assert killed_at < last < 3000
    with np.load(run / "checkpoint" / BUFFER.format(last)) as saved:
        assert int(saved["_pos"]) == last  # the buffer continued from the killed run's
    assert [p.name for p in (tmp_path / "tb/CartPole-v1").iterdir()] == ["DDQN_1"]
    ends = _monitor_ends(run / "0.monitor.csv")
    assert ends == sorted(set(ends)) and 3000 - 500 < ends[-1] <= 3000

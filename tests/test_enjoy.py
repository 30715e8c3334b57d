"""``sb3-snn enjoy``: any registered algorithm (rl_zoo3's enjoy refuses ddqn), ``--record`` writes an mp4."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import run_cli


@pytest.mark.expensive  # a CLI training and a recording
def test_enjoy_records_a_video_of_a_ddqn_agent(tmp_path):
    run_cli(["-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-n", "200", "--eval-freq", "-1",
             "--seed", "0", "-params", "learning_starts:50", "policy_kwargs:dict(net_arch=[8])"], cwd=tmp_path)
    proc = run_cli(["-m", "sb3_snn", "enjoy", "--algo", "ddqn", "--env", "CartPole-v1", "-f", "logs", "--record",
                    "-n", "40", "-o", "videos"], cwd=tmp_path)
    videos = list((tmp_path / "videos").glob("ddqn-CartPole-v1*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert "40 steps" in proc.stdout and "video: videos/ddqn-CartPole-v1" in proc.stdout


def test_enjoy_refuses_zero_steps(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sb3_snn", "enjoy", "--algo", "ddqn", "--env", "CartPole-v1", "-n", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "-n/--n-timesteps: must be >= 1, found 0" in proc.stderr


def test_enjoy_is_listed(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sb3_snn"], cwd=tmp_path, capture_output=True, text=True)
    assert "enjoy" in proc.stdout and "--record" in proc.stdout

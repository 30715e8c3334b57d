"""Tuning and sweeps on Optuna's shared storage: samplers of every method, the conversion study, PostgreSQL
started by scripts/postgres.sh, concurrent workers, and a sweep cell lost to SIGKILL run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from sb3_snn.zoo import samplers
from sb3_snn.zoo.tuning import SweepSpec, open_storage

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sb3_snn", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(procs: list[subprocess.Popen], timeout: int = 240) -> None:
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out[-4000:]


def _complete(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(storage=open_storage(storage, heartbeat=False), study_name=name)
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server from scripts/postgres.sh (stopped and deleted afterwards)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip().splitlines()[-1]
    assert url.startswith("postgresql://") and "@localhost:" in url
    yield url
    subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", url], capture_output=True, timeout=120)


# -- fast: the samplers -------------------------------------------------------------------------------------

def _sample(algo: str, config: dict) -> tuple[dict, optuna.trial.Trial]:
    from sb3_snn.zoo.algos import install_algos

    algos = install_algos()
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

    assert isinstance(HYPERPARAMS_SAMPLER[algo], samplers.ClassSampler)
    trial = optuna.create_study().ask()
    token = samplers._CONFIG.set(config)
    try:
        sampled = HYPERPARAMS_SAMPLER[algo](trial, 2, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
    finally:
        samplers._CONFIG.reset(token)
    assert algos[algo] is not None
    return sampled, trial


def test_cvtc_policy_sampler_is_composed_with_dqn_space_over_the_config():
    sampled, trial = _sample("ddqn", {"policy": "CVTCPolicy", "policy_kwargs": {"q_sign": -1, "encoder": "mountaincar"}})
    assert {"beta", "weight_sum_reg", "encoder_sigma", "learning_rate", "one_minus_gamma"} <= set(trial.params)
    kwargs = sampled["policy_kwargs"]
    assert kwargs["q_sign"] == -1 and kwargs["encoder"]["preset"] == "mountaincar"  # the config's, kept
    assert kwargs["beta"] == trial.params["beta"] and "net_arch" in kwargs and "gamma" in sampled
    assert trial.user_attrs[samplers.SAMPLED_ATTR]["policy_kwargs"]["beta"] == trial.params["beta"]


def test_ddqn_with_mlp_policy_tunes_dqn_space_and_sdn_its_own():
    _, trial = _sample("ddqn", {"policy": "MlpPolicy"})
    assert "beta" not in trial.params and "target_update_interval" in trial.params
    sampled, trial = _sample("sdn", {"policy": "SDNPolicy", "teacher": "t.zip", "policy_kwargs": {"net_arch": [64]}})
    assert {"temperature", "alpha", "distillation_loss", "learning_rate", "width", "norm", "n_steps"} == set(trial.params)
    assert "teacher" not in sampled and sampled["policy_kwargs"]["net_arch"] == [trial.params["width"]]


def test_third_party_policy_brings_its_own_sampler():
    from stable_baselines3.dqn.policies import DQNPolicy

    class TunedPolicy(DQNPolicy):
        hyperparameter_sampler = staticmethod(lambda trial, *_: {"policy_kwargs": {"x": trial.suggest_int("x", 1, 3)}})

    sampled, trial = _sample("dqn", {"policy": TunedPolicy})
    assert sampled["policy_kwargs"]["x"] == trial.params["x"] and "learning_rate" in trial.params


def test_storage_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="neither a journal file"):
        open_storage(tmp_path / "study.db")
    assert isinstance(open_storage(tmp_path / "a" / "s.journal"), optuna.storages.JournalStorage)
    (tmp_path / "bad.yml").write_text("envs: [CartPole-v1]\nseeds: [0]\nmethods: {x: {conf: dqn}}\n")
    with pytest.raises(ValueError, match="needs an `algo`"):
        SweepSpec.load(tmp_path / "bad.yml")


# -- expensive: concurrent workers on PostgreSQL ------------------------------------------------------------

TRAIN = ["--env", "CartPole-v1", "-optimize", "--n-trials", "1", "--n-timesteps", "200", "--eval-episodes", "1",
         "--n-evaluations", "1", "--no-optim-plots", "--pruner", "none", "-params", "learning_starts:100"]


@pytest.mark.expensive
def test_two_workers_per_method_share_one_postgres_study(postgres_url, cartpole_teacher_zip, tmp_path):
    jobs = {
        "cvtc": ["train", "--algo", "ddqn", "-conf", "cvtc", *TRAIN],
        "sdn": ["train", "--algo", "sdn", "--teacher", str(cartpole_teacher_zip), *TRAIN],
        "conv": ["convert", "--algo", "dqn", "--env", "CartPole-v1", "--model-path", str(cartpole_teacher_zip),
                 "-optimize", "--n-trials", "2", "--timesteps", "10", "20", "--episodes", "1",
                 "--max-episode-steps", "40", "--n-calibration", "200"],
    }
    for name, args in jobs.items():  # two workers of one study at the same moment, one study after another
        args = [*args, "--storage", postgres_url, "--study-name", name, "-f", str(tmp_path / name)]
        _finish([_spawn(args, tmp_path), _spawn(args, tmp_path)])
    cvtc, sdn, conv = (_complete(postgres_url, name) for name in jobs)
    assert len(cvtc) == 2 and len(sdn) == 2 and len(conv) == 4  # both workers' trials
    assert all({"beta", "weight_sum_reg", "encoder_sigma", "learning_rate"} <= set(t.params) for t in cvtc)
    assert all({"temperature", "alpha", "distillation_loss", "n_steps", "norm"} <= set(t.params) for t in sdn)
    assert all(set(t.params) == {"percentile", "timesteps", "readout", "rounding"} for t in conv)
    assert all(len(t.values) == 2 and "synops_per_action" in t.user_attrs for t in conv)


@pytest.mark.expensive
def test_sigkilled_sweep_worker_cell_is_run_again(postgres_url, tmp_path):
    spec = tmp_path / "sweep.yml"
    spec.write_text("study: kill\nenvs: [CartPole-v1]\nseeds: [0, 1]\nn_timesteps: 3000\neval_episodes: 2\n"
                    "methods:\n  dqn: {algo: dqn, conf: dqn, hyperparams: {learning_starts: 100}}\n")
    args = ["sweep", str(spec), "--storage", postgres_url, "--heartbeat", "1", "--grace", "3"]
    victim = _spawn(args, tmp_path)
    storage = open_storage(postgres_url, heartbeat=False)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it in the middle of its first cell
        try:
            running = optuna.load_study(storage=storage, study_name="kill").get_trials(
                states=(optuna.trial.TrialState.RUNNING,))
        except KeyError:
            running = []
        if running:
            break
        time.sleep(0.3)
    assert running, "the first worker never started a cell"
    time.sleep(1.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(4)  # past the grace period: the cell is stale
    _finish([_spawn(args, tmp_path)])
    study = optuna.load_study(storage=storage, study_name="kill")
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.FAIL in states  # the lost cell, failed by the heartbeat check
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.params["seed"] for t in complete) == [0, 1]
    assert any("failed_trial" in t.system_attrs for t in complete)  # run again from the queue
    report = subprocess.run([sys.executable, "-m", "sb3_snn", "sweep", str(spec), "--storage", postgres_url, "--report"],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "2/2" in report.stdout and (tmp_path / "sweep" / "report.png").is_file()

"""``sb3-snn export`` end to end, and the backends on a real converted CartPole policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sb3_snn import backends
from sb3_snn.backends import examples
from sb3_snn.cli import export


def test_export_description_folder_with_episodes(tmp_path, capsys):
    folder = examples.converted_like(hidden=(16,), timesteps=8).to_files(tmp_path / "desc")
    code = export.main(["--backend", "nc64c", "--policy-file", str(folder), "--env", "CartPole-v1", "--out",
                        str(tmp_path / "out"), "--episodes", "1", "--n-calibration", "32", "--set", "weight_bits=6",
                        "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "cores used" in out and "energy per action" in out and "1 episodes with the nc64c deployment: score" in out
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["episodes"]["agreement_with_float_snn"] > 0.5 and document["episodes"]["agreement_with_policy"] is None
    loaded = backends.load("nc64c").load_deployment(tmp_path / "out")
    assert loaded.spec.weight_bits == 6


def test_export_refusal_is_a_clear_error(tmp_path, capsys):
    folder = examples.converted_like(hidden=(8,), timesteps=4).to_files(tmp_path / "desc")
    code = export.main(["--backend", "nir", "--policy-file", str(folder), "--out", str(tmp_path / "o"),
                        "--n-calibration", "4"])
    assert code == 1 and "NIR has no reset by subtraction" in capsys.readouterr().err
    code = export.main(["--backend", "nir", "--policy-file", str(folder), "--out", str(tmp_path / "o"), "--n-calibration", "4",
                        "--set", "approximate_reset=true"])
    assert code == 0 and (tmp_path / "o" / "model.nir").is_file()
    capsys.readouterr()
    code = export.main(["--backend", "nir", "--policy-file", str(folder), "--out", str(tmp_path / "o"),
                        "--set", "weight_bits=4"])
    error = capsys.readouterr().err
    assert code == 2 and "backend 'nir' has no option 'weight_bits'; accepted: action_rate_hz, approximate_reset" in error


@pytest.fixture(scope="module")
def converted_cartpole(tmp_path_factory, cartpole_teacher_zip):
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn import conversion

    model = DQN.load(cartpole_teacher_zip, device="cpu", buffer_size=1)  # the shared test teacher
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    policy = conversion.convert(model, env=env, timesteps=32, n_calibration=400)
    obs = conversion.collect_calibration_frames(conversion.extract_network(model), env, 240, 0.05, 1)
    path = tmp_path_factory.mktemp("conv") / "converted.pt"
    policy.save(path)
    return policy, path, obs.astype(np.float64)


@pytest.mark.expensive
def test_real_converted_cartpole_on_nc64c(converted_cartpole, capsys):
    """Measured figures for a converted CartPole DQN (T=32): printed; floors guard against regressions."""
    policy, _, obs = converted_cartpole
    description = policy.spiking_description()
    calibration, test = obs[:120], obs[120:]
    reference = backends.reference_simulate(description, test).actions
    figures = {}
    for bits in (8, 12, 16):
        backend = backends.load("nc64c", weight_bits=bits, input_bits=bits, membrane_bits=40)
        deployment = backend.compile(description, calibration)
        figures[bits] = backends.agreement(deployment.run(test), reference)
    with capsys.disabled():
        print(f"\nconverted CartPole (T=32) integer vs float SNN agreement by weight/input bits: {figures}")
    assert figures[16] >= 0.97
    assert figures[8] >= 0.8


@pytest.mark.expensive
def test_export_converted_policy_file(converted_cartpole, tmp_path, capsys):
    _, path, _ = converted_cartpole
    code = export.main(["--backend", "nc64c", "--policy-file", str(path), "--env", "CartPole-v1", "--out", str(tmp_path / "o"),
                        "--n-calibration", "64"])
    out = capsys.readouterr().out
    assert code == 0 and "q_net" in out and "agreement with float SNN" in out


def test_export_cvtc_policy_file_to_nir_with_episodes(tmp_path, capsys):
    """A CVTC policy file (beta-free mode) through ``--policy-file``: exported as an exact time-to-first-spike graph,
    and played; the float reference of a temporal network is its exact spike-time simulation."""
    import sb3_snn

    policy = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), seed=0).policy
    policy.set_inference("mostafa")
    policy.save(tmp_path / "cvtc.pt")
    code = export.main(["--backend", "nir", "--policy-file", str(tmp_path / "cvtc.pt"), "--env", "CartPole-v1",
                        "--out", str(tmp_path / "o"), "--n-calibration", "16", "--episodes", "1",
                        "--set", "temporal_node=li_if", "--json", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    figures = json.loads((tmp_path / "r.json").read_text())["episodes"]
    assert figures["agreement_with_float_snn"] == 1.0 and figures["agreement_with_policy"] >= 0.95

"""Low-latency conversion: the clip-floor-shift activation, its conversion to IF neurons with a
half-threshold initial charge, ``convert(method=...)`` validation, batched paired episodes and the CLI."""

from __future__ import annotations

import itertools
import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from torch import nn

from sb3_snn.conversion import convert
from sb3_snn.conversion.evaluation import run_episodes, run_episodes_batched
from sb3_snn.conversion.extract import SourceNetwork
from sb3_snn.conversion.low_latency import (
    METHODS,
    QCFS,
    FineTuneResult,
    LowLatencyOptions,
    QCFSNetwork,
    check_method,
    converted_layers,
    fine_tune,
)
from sb3_snn.conversion.simulation import simulate_fast, simulate_reference


def test_qcfs_outputs_are_the_levels() -> None:
    act = QCFS(levels=4, threshold=2.0)
    x = th.linspace(-3, 5, 1001)
    y = act(x).detach()
    levels = 2.0 * th.arange(5) / 4  # lambda k / L, k = 0..L
    assert th.all(th.isclose(y[:, None], levels[None, :], atol=1e-5).any(dim=1))
    assert float(y.min()) == 0.0 and abs(float(y.max()) - 2.0) < 1e-5
    # the shift: x = lambda / (2L) is where the first level starts (rounding, not flooring)
    with th.no_grad():
        assert float(act(th.tensor([0.26]))) == pytest.approx(0.5, abs=1e-5)
        assert float(act(th.tensor([0.24]))) == 0.0


def test_qcfs_tends_to_clipped_relu() -> None:
    x = th.randn(2000) * 3
    for levels in (16, 256, 4096):
        y = QCFS(levels=levels, threshold=2.5)(x).detach()
        assert float((y - x.clamp(0, 2.5)).abs().max()) <= 2.5 / (2 * levels) + 1e-5


def test_qcfs_gradient_reaches_input_and_threshold() -> None:
    act = QCFS(levels=8, threshold=1.0)
    x = th.linspace(-0.5, 1.5, 50, requires_grad=True)
    act(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert act.threshold.grad is not None and float(act.threshold.grad.abs()) > 0


def _tiny_source(seed: int = 0, hidden: tuple[int, ...] = (16,)) -> SourceNetwork:
    th.manual_seed(seed)
    sizes = [4, *hidden, 3]
    layers: list[nn.Module] = [nn.Flatten()] + [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
    return SourceNetwork(
        layers=layers,
        names=[f"l{i}" for i in range(len(layers))],
        observation_space=gym.spaces.Box(-5, 5, (4,)),
        action_space=gym.spaces.Discrete(3),
        normalize_images=False,
        kind="q",
    )


def _result(network: QCFSNetwork) -> FineTuneResult:
    return FineTuneResult(network, network.thresholds, 1.0, None, None, 0, [])


@pytest.mark.parametrize("levels", [4, 8, 16])
def test_snn_with_half_threshold_at_T_equal_L_matches_qcfs_one_hidden_layer(levels: int) -> None:
    source = _tiny_source()
    network = QCFSNetwork(source.layers, [1.5], levels)
    x = th.randn(400, 4, dtype=th.float64)
    network = network.double()
    with th.no_grad():
        expected = network(x)
    layers, scales = converted_layers(_result(network))
    assert scales[-1] == 1.0
    layers = [layer.double() for layer in layers]
    # the half-threshold initial charge, delivered as V_thr / (2T) of bias per step (rounding="round")
    out = simulate_fast(layers, x, levels, 1.0, "robust", bias_offset=0.5 / levels).outputs
    assert th.allclose(out, expected, atol=1e-9)
    # the same with the charge as an initial membrane proper
    v0 = {1: th.full((400, 16), 0.5, dtype=th.float64)}
    out_v0 = simulate_reference(layers, x, levels, 1.0, "robust", initial_potential=v0).outputs
    assert th.allclose(out_v0, expected, atol=1e-9)


def test_snn_at_T_equal_L_agrees_with_qcfs_two_hidden_layers() -> None:
    source = _tiny_source(seed=1, hidden=(32, 32))
    network = QCFSNetwork(source.layers, [2.0, 2.0], 8).double()
    x = th.randn(500, 4, dtype=th.float64)
    with th.no_grad():
        expected = network(x)
    layers = [layer.double() for layer in converted_layers(_result(network))[0]]
    out = simulate_fast(layers, x, 8, 1.0, "robust", bias_offset=0.5 / 8).outputs
    top2 = expected.topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    clear = gap > gap.median()  # not a near-tie of the QCFS net
    agreement = (out.argmax(1) == expected.argmax(1))[clear].double().mean()
    assert float(agreement) >= 0.9  # exact for the first layer; the second sees uneven spike trains


def test_fine_tune_keeps_the_teacher_on_tiny_data() -> None:
    source = _tiny_source(seed=2, hidden=(32,))
    x = th.randn(600, 4)
    options = LowLatencyOptions(levels=16, epochs=8, n_states=300, n_validation=100, lr=3e-3, batch_size=64, seed=0)
    result = fine_tune(source, x[:300], options, x[300:400])
    assert result.validation_agreement is not None and result.initial_validation_agreement is not None
    assert result.validation_agreement >= result.initial_validation_agreement
    assert len(result.thresholds) == 1 and result.thresholds[0] > 0
    assert len(result.history) == 8


def test_method_and_options_are_checked() -> None:
    assert METHODS == ("paper", "low_latency")
    assert check_method("low_latency") == "low_latency"
    with pytest.raises(ValueError, match=r"unknown conversion method 'fast'.*'paper', 'low_latency'"):
        check_method("fast")
    with pytest.raises(ValueError, match=r"unknown low_latency options \['level'\]; allowed: .*'levels'"):
        LowLatencyOptions.from_any({"level": 4})
    with pytest.raises(ValueError, match="levels"):
        LowLatencyOptions(levels=0)


@pytest.fixture(scope="module")
def tiny_dqn() -> DQN:
    return DQN(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=1, seed=0),
        policy_kwargs=dict(net_arch=[16, 16]),
        seed=0,
        device="cpu",
        learning_starts=10,
    )


def test_convert_refuses_unknown_method_and_stray_options(tiny_dqn: DQN) -> None:
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    with pytest.raises(ValueError, match="unknown conversion method 'qcfs'; expected one of"):
        convert(tiny_dqn, env=env, method="qcfs")
    with pytest.raises(ValueError, match="method='low_latency'"):
        convert(tiny_dqn, env=env, low_latency={"levels": 4})


def test_convert_low_latency_is_a_deployable_converted_policy(tiny_dqn: DQN) -> None:
    from sb3_snn.spiking import simulate

    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    policy = convert(
        tiny_dqn,
        env=env,
        method="low_latency",
        timesteps=8,
        low_latency={"levels": 8, "epochs": 2, "n_states": 200, "n_validation": 50},
    )
    assert policy.timesteps == 8 and policy.rounding == "round" and policy.scales[-1] == 1.0
    assert policy.metadata["conversion_method"] == "low_latency"
    assert policy.scales[:-1] == pytest.approx(policy.metadata["fine_tuning"]["thresholds"])
    obs = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    description = policy.spiking_description()
    reference = simulate(description, obs)
    with th.no_grad():
        ours = policy.simulate(th.as_tensor(obs)).outputs.argmax(1).numpy()
    assert np.array_equal(reference.actions, ours)
    assert convert(tiny_dqn, env=env, n_calibration=50).timesteps == 500  # the paper's default T is kept


def test_batched_paired_episodes_replay_one_env_episodes(tiny_dqn: DQN) -> None:
    policy = convert(tiny_dqn, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), timesteps=16, n_calibration=50)
    batched = run_episodes_batched(policy, make_vec_env("CartPole-v1", n_envs=3, seed=0), seed=7, reference=tiny_dqn)
    single = run_episodes(policy, make_vec_env("CartPole-v1", n_envs=1, seed=0), 3, seed=7, reference=tiny_dqn)
    assert batched.scores == single["scores"]
    assert sum(batched.matches) == single["matches"]
    assert batched.synops == pytest.approx(single["synops"], rel=1e-6)


def test_cli_refuses_unknown_method(capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_snn.cli.convert import main

    with pytest.raises(SystemExit):
        main(["--algo", "dqn", "--env", "CartPole-v1", "--model-path", "x.zip", "--method", "fast"])
    err = capsys.readouterr().err
    assert "unknown conversion method 'fast'" in err and "paper, low_latency" in err


def test_cli_low_latency_sweeps_T(tiny_dqn: DQN, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_snn.cli.convert import main

    path = tmp_path / "dqn.zip"
    tiny_dqn.save(path)
    options = json.dumps({"levels": 4, "epochs": 1, "n_states": 100, "n_validation": 20})
    main(
        [
            "--algo",
            "dqn",
            "--env",
            "CartPole-v1",
            "--model-path",
            str(path),
            "--method",
            "low_latency",
            "--low-latency",
            options,
            "--timesteps",
            "4",
            "8",
            "--episodes",
            "1",
            "--held-out",
            "60",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert "T =    4: conversion rate" in out and "T =    8: conversion rate" in out
    document = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert [row["timesteps"] for row in document["held_out"]] == [4, 8]
    assert (tmp_path / "out" / "conversion_rate_vs_T.csv").is_file()

"""SDN student policies: gradients through time, frame order, spiking description, save/load, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_snn import SDN
from sb3_snn.sdn import SDNCnnPolicy, SDNPolicy
from sb3_snn.sdn.losses import LOSSES, distillation_loss, teacher_targets01
from sb3_snn.spiking import simulate

FRAMES = spaces.Box(0, 255, (4, 16, 16), np.uint8)
VECTOR = spaces.Box(-2.0, 2.0, (4,), np.float32)
TINY_CNN = dict(conv_arch=[(4, 4, 2), (4, 3, 2)], net_arch=[8])


def _frames(batch: int = 16, seed: int = 0) -> th.Tensor:
    return th.as_tensor(np.random.default_rng(seed).integers(0, 256, (batch, *FRAMES.shape)), dtype=th.uint8)


def _cnn(calibrate: bool = True, **kwargs) -> SDNCnnPolicy:
    th.manual_seed(0)
    policy = SDNCnnPolicy(FRAMES, spaces.Discrete(3), lambda _: 1e-3, **{**TINY_CNN, **kwargs})
    if calibrate:
        policy.network.calibrate(policy.preprocess(_frames(32, seed=5)))
    return policy


def test_calibration_wakes_silent_layers() -> None:
    policy = _cnn(calibrate=False)
    obs = policy.preprocess(_frames(32, seed=5))
    policy.network(obs)
    assert policy.network.last_spike_counts["fc1"].sum() == 0  # default init: deeper layers are silent
    rates = policy.network.calibrate(obs, target_rate=0.1)
    assert all(0.05 <= rate <= 0.2 for rate in rates.values()), rates
    assert bool(policy.network.calibrated)


def test_gradients_reach_every_layer_through_time() -> None:
    policy = _cnn()
    x = policy.preprocess(_frames()).requires_grad_(True)
    policy.network(x).sum().backward()
    for name, parameter in policy.network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # every frame, the oldest (first time step) included, gets a gradient: the error flows back through time
    per_frame = x.grad.abs().sum(dim=(0, 2, 3))
    assert (per_frame > 0).all(), per_frame


def test_gradients_mlp_rate_readout() -> None:
    th.manual_seed(0)
    policy = SDNPolicy(VECTOR, spaces.Discrete(2), lambda _: 1e-3, net_arch=[16, 8], readout="rate", n_steps=6)
    obs = th.as_tensor(np.random.default_rng(0).uniform(-2, 2, (32, 4)), dtype=th.float32)
    policy(obs).sum().backward()
    for name, parameter in policy.network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_frames_fed_one_per_step_and_order_matters() -> None:
    policy = _cnn()
    assert policy.n_steps == 4 and policy.network.steps_per_frame == 1
    obs = _frames()
    with th.no_grad():
        logits = policy(obs)
        reversed_logits = policy(obs.flip(1))
        again = policy(obs)
    assert th.equal(logits, again)  # state is reset at every forward pass
    assert not th.allclose(logits, reversed_logits)


def test_stacked_channels_ablation() -> None:
    policy = _cnn(encoding="constant", n_steps=3)
    assert policy.network.synapses[0].in_channels == 4 and policy.n_steps == 3
    assert policy.spiking_description().encoding == {"kind": "analog"}


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("cnn", {}),
        ("cnn", {"steps_per": 2}),
        ("cnn", {"encoding": "constant", "n_steps": 3, "readout": "rate"}),
        ("mlp", {"net_arch": [16, 8], "n_steps": 5}),
        ("mlp", {"net_arch": [16], "readout": "rate", "decay": 1.0}),
    ],
)
def test_spiking_description_reproduces_the_policy(kind: str, kwargs: dict) -> None:
    if kind == "cnn":
        if kwargs.pop("steps_per", None):
            kwargs["n_steps"] = 8
        policy = _cnn(**kwargs)
        obs = _frames(32)
    else:
        th.manual_seed(0)
        policy = SDNPolicy(VECTOR, spaces.Discrete(2), lambda _: 1e-3, **kwargs)
        obs = th.as_tensor(np.random.default_rng(1).uniform(-2, 2, (64, 4)), dtype=th.float32)
    description = policy.spiking_description()
    with th.no_grad():
        logits = policy(obs).numpy()
    result = simulate(description, policy.preprocess(obs).double().numpy())
    np.testing.assert_allclose(result.outputs, logits, rtol=1e-4, atol=1e-4)
    assert (result.actions == logits.argmax(1)).all()
    for name, counts in policy.network.last_spike_counts.items():
        np.testing.assert_array_equal(result.spike_counts[name], counts.numpy())
    report = policy.cost_report()
    assert report.synops > 0 and set(report.firing_rates) == set(policy.network.last_spike_counts)


def test_description_round_trips_through_files(tmp_path) -> None:
    policy = _cnn()
    description = policy.spiking_description()
    loaded = type(description).from_files(description.to_files(tmp_path / "sdn"))
    obs = policy.preprocess(_frames(8)).double().numpy()
    np.testing.assert_allclose(simulate(loaded, obs).outputs, simulate(description, obs).outputs)
    assert policy.parameter_bytes() == 4 * sum(p.numel() for p in policy.network.parameters())


def test_constructor_parameters_survive_save_load(tmp_path) -> None:
    import gymnasium as gym

    kwargs = dict(net_arch=[12], n_steps=5, threshold=0.4, decay=0.3, surrogate="atan", surrogate_alpha=2.0,
                  readout="rate", rate_scale=7.0, readout_decay=0.5)
    model = SDN("SDNPolicy", gym.make("CartPole-v1"), policy_kwargs=kwargs, seed=0)
    obs = np.random.default_rng(0).uniform(-1, 1, (20, 4)).astype(np.float32)
    actions = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "sdn")
    loaded = SDN.load(tmp_path / "sdn", device="cpu")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    params = loaded.policy._get_constructor_parameters()
    for key, value in kwargs.items():
        assert params[key] == value, key
    with pytest.raises(RuntimeError, match="no teacher"):
        loaded.train(1, 4)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="decay"):
        _cnn(decay=0.0)
    with pytest.raises(ValueError, match="multiple of the frame count"):
        _cnn(n_steps=6)
    with pytest.raises(ValueError, match="surrogate"):
        _cnn(surrogate="nope")
    with pytest.raises(ValueError, match="image"):
        SDNCnnPolicy(VECTOR, spaces.Discrete(2), lambda _: 1e-3)


def test_losses() -> None:
    th.manual_seed(0)
    student, teacher = th.randn(8, 4, requires_grad=True), th.randn(8, 4)
    for name in LOSSES:
        value, parts = distillation_loss(student, teacher, name, temperature=3.0, alpha=0.7, output_scale=2.0)
        value.backward()
        assert np.isfinite(parts["loss"]) and student.grad is not None
    value, parts = distillation_loss(student, teacher, "soft_hard_ce", temperature=3.0, alpha=0.7)
    assert value.item() == pytest.approx(0.7 * parts["loss_soft"] + 0.3 * parts["loss_hard"], rel=1e-5)
    # soft part carries Hinton's T^2 factor
    soft = -(th.softmax(teacher / 3, 1) * th.log_softmax(student / 3, 1)).sum(1).mean() * 9
    assert parts["loss_soft"] == pytest.approx(soft.item(), rel=1e-5)
    for kind in ("minmax", "softmax", "onehot"):
        target = teacher_targets01(teacher, kind, 2.0)
        assert target.min() >= 0 and target.max() <= 1
        assert (target.argmax(1) == teacher.argmax(1)).all()


@pytest.mark.parametrize("decay", [0.2, 1.0])
def test_fast_inference_path_matches_spikingjelly(decay: float) -> None:
    policy = _cnn(decay=decay, readout="rate", n_steps=8)
    obs = policy.preprocess(_frames(16, seed=3))
    trained_path = policy.network(obs)  # gradients on: spikingjelly LIF nodes
    counts = {k: v.clone() for k, v in policy.network.last_spike_counts.items()}
    with th.no_grad():
        fast_path = policy.network(obs)  # gradients off: lif_inference
    th.testing.assert_close(fast_path, trained_path.detach())
    for name, value in policy.network.last_spike_counts.items():
        assert th.equal(value, counts[name]), name

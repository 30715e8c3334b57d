"""SDN student policies: gradients through time, frame order, spiking description, save/load, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from sb3_snn import SDN
from sb3_snn.sdn import SDNCnnPolicy, SDNPolicy
from sb3_snn.sdn.losses import LOSSES, distillation_loss, teacher_targets01
from sb3_snn.sdn.network import lif_inference, lif_numpy
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
    report = policy.cost_report(obs)
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


FAST_PATH_CASES = [
    ("cnn", {}),  # frames, one per step
    ("cnn", {"n_steps": 8, "readout": "rate", "decay": 1.0}),  # frames, two steps each, IF neurons
    ("cnn", {"encoding": "constant", "n_steps": 3, "readout_decay": 0.6}),  # stacked channels
    ("mlp", {"net_arch": [16, 8], "n_steps": 5}),
    ("mlp", {"net_arch": [16], "readout": "rate", "threshold": 0.3}),
    ("mlp", {"net_arch": [], "n_steps": 3}),
]


def _random_policy(kind: str, kwargs: dict, seed: int) -> tuple[SDNPolicy, th.Tensor]:
    """A random student (weights scaled up so that every layer, the rate readout included, spikes) and raw
    observations for it."""
    if kind == "cnn":
        policy, obs = _cnn(calibrate=False, **kwargs), _frames(16, seed=seed)
    else:
        th.manual_seed(seed)
        policy = SDNPolicy(VECTOR, spaces.Discrete(3), lambda _: 1e-3, **kwargs)
        obs = th.as_tensor(np.random.default_rng(seed).uniform(-2, 2, (16, 4)), dtype=th.float32)
    with th.no_grad():
        for synapse in [*policy.network.synapses, policy.network.out]:
            synapse.weight.mul_(3.0)
    return policy, obs


def _step_by_step(network, x: th.Tensor) -> tuple[th.Tensor, dict[str, th.Tensor]]:
    """The student simulated literally: time outer, layers inner, one synaptic operation per step."""
    steps, batch = network.n_steps, x.shape[0]
    distinct = network.encode(x)
    v: dict[str, th.Tensor] = {}
    counts: dict[str, th.Tensor] = {}
    readout = 0.0
    for t in range(steps):
        h = distinct[t // network.steps_per_frame] if network.encoding == "frames" else distinct[0]
        layers = [*zip(network.names, network.synapses, strict=True), ("out", network.out)]
        for name, synapse in layers:
            current = synapse(h.flatten(1) if isinstance(synapse, th.nn.Linear) else h)
            if name == "out" and network.readout == "membrane_mean":
                v[name] = current if t == 0 else network.readout_decay * v[name] + current
                readout = readout + v[name] / steps
                break
            v[name] = current if t == 0 else network.decay * v[name] + current
            h = (v[name] >= network.threshold).float()
            v[name] = v[name] * (1 - h)
            counts[name] = counts.get(name, 0) + h
    if network.readout == "rate":
        readout = network.rate_scale * counts["out"] / steps
    return readout.reshape(batch, -1), counts


@pytest.mark.parametrize("kind, kwargs", FAST_PATH_CASES)
def test_fast_inference_path_is_exact(kind: str, kwargs: dict) -> None:
    """The inference path (numpy recurrences, gradients off) gives bit for bit the logits and spikes of
    the spikingjelly nodes used in training, and the spikes of a literal step-by-step simulation."""
    for seed in (0, 1):
        policy, obs = _random_policy(kind, kwargs, seed)
        network, x = policy.network, policy.preprocess(obs)
        with th.no_grad():
            fast = network.forward_fast(x)
            fast_counts = dict(network.last_spike_counts)
            nodes = network.forward_nodes(x)
            nodes_counts = dict(network.last_spike_counts)
            literal, literal_counts = _step_by_step(network, x)
        trained = network(x)  # gradients on: the training path
        assert th.equal(fast, nodes) and th.equal(fast, trained.detach())
        assert set(fast_counts) == set(nodes_counts) == set(literal_counts)
        for name, counts in fast_counts.items():
            assert th.equal(counts, nodes_counts[name]) and th.equal(counts, literal_counts[name]), name
        assert all(float(c.sum()) > 0 for c in fast_counts.values())  # every layer spiked: a real comparison
        th.testing.assert_close(fast, literal, rtol=1e-5, atol=1e-5)  # the readout sums in another order
        assert th.equal(fast.argmax(1), literal.argmax(1))


def test_lif_numpy_and_torch_recurrences_agree() -> None:
    current = th.randn(3, 5, 7, generator=th.Generator().manual_seed(0))
    numpy_path = lif_inference(current, 0.3, 0.4, repeats=2)  # CPU: numpy
    torch_path = lif_inference(current.clone().requires_grad_(), 0.3, 0.4, repeats=2).detach()  # the loop used on GPUs
    assert th.equal(numpy_path, torch_path) and numpy_path.shape == (6, 5, 7)
    assert th.equal(numpy_path, lif_inference(current.repeat_interleave(2, 0), 0.3, 0.4))
    np.testing.assert_array_equal(lif_numpy(current.double().numpy(), 0.3, 0.4, 2), numpy_path.double().numpy())


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_predict_matches_the_training_forward(kind: str) -> None:
    """SB3's ``predict`` (which reaches the compiled path through ``_predict``) gives the actions of the
    training forward for a batch, a single observation and inputs SB3 converts (channel-last images, lists)."""
    policy, obs = _random_policy(kind, {}, 0)
    policy.set_training_mode(True)
    batch = obs.numpy()
    actions, state = policy.predict(batch, deterministic=True)
    assert not policy.training and state is None
    with th.no_grad():
        expected = policy.network.forward_nodes(policy.preprocess(obs)).argmax(1).numpy()
    np.testing.assert_array_equal(actions, expected)
    np.testing.assert_array_equal(BasePolicy.predict(policy, batch, deterministic=True)[0], expected)
    single, _ = policy.predict(batch[3], deterministic=True)
    assert single.shape == () and single == expected[3]
    assert BasePolicy.predict(policy, batch[3], deterministic=True)[0].shape == ()
    calls = []
    lean = policy.network.forward_lean
    policy.network.forward_lean = lambda *args: calls.append(args) or lean(*args)  # SB3's predict on the CPU: compiled
    np.testing.assert_array_equal(policy.predict(batch, deterministic=True)[0], expected)
    assert len(calls) == 1
    del policy.network.forward_lean
    # what SB3's obs_to_tensor converts first: channel-last images, lists
    other = batch[:2].transpose(0, 2, 3, 1) if kind == "cnn" else batch[:2].tolist()
    np.testing.assert_array_equal(policy.predict(other, deterministic=True)[0], expected[:2])


def test_tdbn_keeps_layers_in_window_exact_paths_and_folds_into_description() -> None:
    """``norm="tdbn"``: batch-normalised currents (scale = threshold) after the input layer in training, an
    affine map per channel at inference; the fast path equals the nodes in both modes, the description
    folds it in."""
    policy = _cnn(calibrate=False, norm="tdbn")
    network, x = policy.network, policy.preprocess(_frames(32))
    weights = [s.weight.clone() for s in network.synapses]
    network.calibrate(x)  # the input layer (not normalised) is calibrated; the normalised ones are left alone
    assert not th.equal(weights[0], network.synapses[0].weight) and bool(network.calibrated)
    assert all(th.equal(w, s.weight) for w, s in zip(weights[1:], network.synapses[1:], strict=True))
    assert isinstance(network.norms[0], th.nn.Identity) and len(network.norms) == 3
    assert all(float(bn.weight.detach()[0]) == network.threshold for bn in network.norms[1:])
    policy.set_training_mode(True)
    for _ in range(40):  # running statistics converge
        policy(_frames(32)).sum().backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for training in (True, False):
        policy.set_training_mode(training)
        with th.no_grad():
            fast = network.forward_fast(x)
            counts = dict(network.last_spike_counts)
            nodes = network.forward_nodes(x)
        assert th.equal(fast, nodes), training
        assert all(0.0 < float(c.mean()) / network.n_steps < 0.5 for c in counts.values()), counts
    description = policy.spiking_description()
    result = simulate(description, x.double().numpy())
    np.testing.assert_allclose(result.outputs, fast.numpy(), rtol=1e-4, atol=1e-4)
    assert (result.actions == fast.argmax(1).numpy()).all()
    with pytest.raises(ValueError, match="norm"):
        _cnn(calibrate=False, norm="layer")


LEAN_CASES = [
    *FAST_PATH_CASES,
    ("cnn", {"norm": "tdbn"}),  # batch normalisation folded into the weights
    ("cnn", {"encoding": "constant", "n_steps": 4, "norm": "tdbn", "readout": "rate"}),
    ("cnn", {"conv_arch": [(3, 5, 3)], "net_arch": []}),  # odd channel count, stride 3, convolution -> readout
    ("cnn", {"conv_arch": [], "net_arch": [5]}),  # frames straight into a fully connected layer
]


def _eval_policy(kind: str, kwargs: dict, seed: int) -> tuple[SDNPolicy, th.Tensor]:
    """:func:`_random_policy` in evaluation mode, its batch normalisation (if any) with running statistics
    away from their initial values."""
    policy, obs = _random_policy(kind, dict(kwargs), seed)
    if policy.network.norm is not None:
        policy.set_training_mode(True)
        with th.no_grad():
            for index in range(5):
                policy(obs if kind == "mlp" else _frames(16, seed=10 + index))
    policy.set_training_mode(False)
    return policy, obs


@pytest.mark.parametrize("kind, kwargs", LEAN_CASES)
def test_lean_path_matches_the_training_forward(kind: str, kwargs: dict) -> None:
    """The compiled CPU path behind ``predict`` gives the spikes and actions of the training forward (the
    spikingjelly nodes) and its logits to float32 rounding (same terms, summed in another order)."""
    for seed in (0, 1):
        policy, obs = _eval_policy(kind, kwargs, seed)
        network = policy.network
        with th.no_grad():
            nodes = network.forward_nodes(policy.preprocess(obs))
            nodes_counts = dict(network.last_spike_counts)
        assert network.lean() is not None
        logits, actions = network.forward_lean(obs.numpy(), policy._scale_images)
        counts = network.last_spike_counts
        assert set(counts) == set(nodes_counts)
        for name, count in counts.items():
            assert count.dtype == nodes_counts[name].dtype and th.equal(count, nodes_counts[name]), name
        assert all(float(c.sum()) > 0 for c in counts.values())  # every layer spiked: a real comparison
        np.testing.assert_allclose(logits, nodes.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(actions, nodes.argmax(1).numpy())
        np.testing.assert_array_equal(policy.predict(obs.numpy(), deterministic=True)[0], actions)
        assert policy.cost_report(obs.numpy()).synops >= 0


def test_lean_path_inputs() -> None:
    """Single observations, non-contiguous and float64 arrays, unscaled images, SB3's generic predict."""
    policy, obs = _eval_policy("cnn", {}, 0)
    batch = obs.numpy()
    expected = policy.predict(batch, deterministic=True)[0]
    strided = np.ascontiguousarray(batch.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(policy.predict(strided, deterministic=True)[0], expected)
    np.testing.assert_array_equal(policy.predict(batch.astype(np.float64), deterministic=True)[0], expected)
    single = policy.predict(batch[5], deterministic=True)[0]
    assert single.shape == () and single == expected[5]
    np.testing.assert_array_equal(BasePolicy.predict(policy, batch, deterministic=True)[0], expected)
    th.manual_seed(0)
    raw = SDNCnnPolicy(FRAMES, spaces.Discrete(3), lambda _: 1e-3, normalize_images=False, **TINY_CNN)
    raw.set_training_mode(False)
    with th.no_grad():
        reference = raw.network.forward_fast(raw.preprocess(obs))
    logits, _ = raw.network.forward_lean(batch, raw._scale_images)
    np.testing.assert_allclose(logits, reference.numpy(), rtol=1e-5, atol=1e-5)
    mlp, vectors = _eval_policy("mlp", {}, 0)
    np.testing.assert_array_equal(mlp.predict(vectors.double().numpy(), deterministic=True)[0],
                                  mlp.predict(vectors.numpy(), deterministic=True)[0])


def test_lean_path_follows_changes() -> None:
    """The compiled copy of the weights is rebuilt after a gradient step, ``load_state_dict``, a replaced
    parameter or a changed setting; training mode and pickling work as before."""
    import copy
    import pickle

    policy, obs = _eval_policy("cnn", {"norm": "tdbn"}, 0)
    network, batch = policy.network, obs.numpy()

    def check() -> np.ndarray:
        actions = policy.predict(batch, deterministic=True)[0]
        with th.no_grad():
            np.testing.assert_array_equal(actions, network.forward_fast(policy.preprocess(obs)).argmax(1).numpy())
        return actions

    check()
    plan = network.lean()
    assert network.lean() is plan  # cached while nothing changes
    policy.set_training_mode(True)
    assert network.lean() is None  # training mode: batch statistics, not the folded affine map
    policy.optimizer.zero_grad()
    policy(obs).sum().backward()
    policy.optimizer.step()
    check()
    assert network.lean() is not plan
    state = copy.deepcopy(policy.state_dict())
    with th.no_grad():
        network.out.weight.mul_(-1.0)
    flipped = check()
    policy.load_state_dict(state)
    restored = check()
    assert not np.array_equal(flipped, restored)
    network.out.weight = th.nn.Parameter(network.out.weight.detach() * -1.0)
    np.testing.assert_array_equal(check(), flipped)
    plan = network.lean()
    network.threshold = 0.45
    check()
    assert network.lean() is not plan
    network.invalidate_lean()
    check()
    clone = pickle.loads(pickle.dumps(policy))
    np.testing.assert_array_equal(clone.predict(batch, deterministic=True)[0], check())

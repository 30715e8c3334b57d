"""Every spiking policy meets the SpikingPolicy contract (sb3_snn/spiking/contract.py).

One module parametrised over the policy classes, as SB3's tests/test_save_load.py runs every algorithm:
scores and actions, save/load without pickle, the spiking description (files and reference simulation),
parameter bytes and the cost report. Tiny, untrained networks; the whole module runs in seconds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, TD3

import sb3_snn
from sb3_snn import ConvertedQPolicy, CVTCPolicy, SDNCnnPolicy, SDNPolicy, SpikingPolicy
from sb3_snn.conversion import ConvertedActorPolicy
from sb3_snn.spiking import CostReport, SpikingDescription, simulate

IMAGES = spaces.Box(0, 255, (4, 20, 20), np.uint8)
N_BATCH = 100


def _cartpole_spaces() -> tuple[spaces.Space, spaces.Space]:
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def _vector_obs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 4)).astype(np.float32)


def _image_obs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *IMAGES.shape), dtype=np.uint8)


def _sdn() -> tuple[SDNPolicy, np.ndarray]:
    th.manual_seed(0)
    policy = SDNPolicy(*_cartpole_spaces(), lambda _: 1e-3, net_arch=[8], n_steps=4)
    with th.no_grad():  # stronger weights: every layer spikes, so the comparisons below are not trivial
        for synapse in [*policy.network.synapses, policy.network.out]:
            synapse.weight.mul_(3.0)
    return policy, _vector_obs(N_BATCH)


def _sdn_box() -> tuple[SDNPolicy, np.ndarray]:
    """A student with continuous actions (Pendulum-v1: Box(-2, 2, (1,)), tanh squash as a SAC teacher's)."""
    th.manual_seed(0)
    env = gym.make("Pendulum-v1")
    policy = SDNPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[8], n_steps=4)
    with th.no_grad():
        for synapse in [*policy.network.synapses, policy.network.out]:
            synapse.weight.mul_(3.0)
    return policy, np.random.default_rng(0).uniform(-1.0, 1.0, (N_BATCH, 3)).astype(np.float32)


def _sdn_cnn() -> tuple[SDNCnnPolicy, np.ndarray]:
    th.manual_seed(0)
    policy = SDNCnnPolicy(IMAGES, spaces.Discrete(3), lambda _: 1e-3, conv_arch=[(4, 4, 2)], net_arch=[8])
    policy.network.calibrate(policy.preprocess(th.as_tensor(_image_obs(32, seed=1))))
    return policy, _image_obs(N_BATCH)


def _cvtc(inference: str) -> Callable[[], tuple[CVTCPolicy, np.ndarray]]:
    def build() -> tuple[CVTCPolicy, np.ndarray]:
        th.manual_seed(0)
        policy = CVTCPolicy(*_cartpole_spaces(), lambda _: 1e-3, net_arch=[8], inference=inference)
        return policy, _vector_obs(N_BATCH)

    return build


def _converted() -> tuple[ConvertedQPolicy, np.ndarray]:
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=0, device="cpu")
    policy = sb3_snn.convert(model, env=gym.make("CartPole-v1"), n_calibration=64, timesteps=16)
    return policy, _vector_obs(N_BATCH)


def _converted_actor() -> tuple[ConvertedActorPolicy, np.ndarray]:
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=0, device="cpu")
    policy = sb3_snn.convert(model, env=gym.make("Pendulum-v1"), n_calibration=64, timesteps=16)
    return policy, np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], (N_BATCH, 3)).astype(np.float32)


def _n_outputs(space: spaces.Space) -> int:
    """Scores per observation: one per discrete action, or one per dimension of a Box action space."""
    return int(space.shape[0]) if isinstance(space, spaces.Box) else int(space.n)  # type: ignore[attr-defined]


#: name -> a fresh policy and a batch of raw observations for it
POLICIES: dict[str, Callable[[], tuple[object, np.ndarray]]] = {
    "SDNPolicy": _sdn,
    "SDNPolicy-Box": _sdn_box,
    "SDNCnnPolicy": _sdn_cnn,
    "CVTCPolicy-beta": _cvtc("beta"),
    "CVTCPolicy-mostafa": _cvtc("mostafa"),
    "ConvertedQPolicy": _converted,
    "ConvertedActorPolicy": _converted_actor,
}


@pytest.fixture(params=list(POLICIES))
def case(request: pytest.FixtureRequest) -> tuple[object, np.ndarray]:
    policy, obs = POLICIES[request.param]()
    policy.set_training_mode(False)  # type: ignore[attr-defined]
    return policy, obs


def test_is_a_spiking_policy(case) -> None:
    policy, _ = case
    assert isinstance(policy, SpikingPolicy)
    assert list(inspect.signature(type(policy).spiking_description).parameters) == ["self"]  # no arguments


def test_predict_and_forward(case) -> None:
    """``predict``: one observation -> shape ``()``, a batch of 5 -> ``(5,)``; ``forward``: scores
    ``[batch, n_actions]`` whose argmax is ``_predict``'s action."""
    policy, obs = case
    if isinstance(policy.action_space, spaces.Box):  # continuous actions: inside the space, single and batched
        single, state = policy.predict(obs[0], deterministic=True)
        batch, _ = policy.predict(obs, deterministic=True)
        assert single.shape == policy.action_space.shape and state is None
        assert batch.shape == (len(obs), *policy.action_space.shape) and np.allclose(batch[0], single)
        assert np.all(batch >= policy.action_space.low) and np.all(batch <= policy.action_space.high)
        with th.no_grad():
            assert policy(th.as_tensor(obs)).shape == (len(obs), _n_outputs(policy.action_space))
        return
    single, state = policy.predict(obs[0], deterministic=True)
    assert np.shape(single) == () and state is None
    batch, _ = policy.predict(obs[:5], deterministic=True)
    assert batch.shape == (5,) and batch[0] == single
    x = th.as_tensor(obs)
    with th.no_grad():
        scores = policy(x)
        actions = policy._predict(x, deterministic=True)
    assert scores.shape == (len(obs), policy.action_space.n) and scores.dtype.is_floating_point
    np.testing.assert_array_equal(scores.argmax(dim=1).numpy(), actions.numpy())
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], actions.numpy())


def test_save_load_round_trip_without_pickle(case, tmp_path) -> None:
    policy, obs = case
    path = tmp_path / "policy.pt"
    policy.save(path)
    raw = th.load(path, weights_only=True)  # plain data and tensors: no pickled objects in the file
    assert raw["format"] == "sb3-snn/policy" and raw["class"] == type(policy).__name__
    loaded = type(policy).load(path, device="cpu")
    assert type(loaded) is type(policy)
    assert loaded.observation_space == policy.observation_space and loaded.action_space == policy.action_space
    for key, value in policy.state_dict().items():
        assert th.equal(loaded.state_dict()[key], value), key
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], policy.predict(obs, deterministic=True)[0])


def _layer_record(layer) -> dict:
    record = asdict(layer)
    for key in ("weight", "bias"):
        record[key] = None if record[key] is None else np.asarray(record[key]).tolist()
    return record


def test_spiking_description_round_trips_through_files(case, tmp_path) -> None:
    policy, _ = case
    description = policy.spiking_description()
    loaded = SpikingDescription.from_files(description.to_files(tmp_path / "description"))
    assert loaded.input_shape == description.input_shape and loaded.timesteps == description.timesteps
    assert loaded.n_actions == description.n_actions == _n_outputs(policy.action_space)
    assert loaded.encoding == description.encoding and loaded.readout == description.readout
    assert [_layer_record(layer) for layer in loaded.layers] == [_layer_record(layer) for layer in description.layers]
    for before, after in zip(description.layers, loaded.layers, strict=True):
        for key in ("weight", "bias"):
            if getattr(before, key) is not None:
                np.testing.assert_array_equal(getattr(after, key), getattr(before, key))


def test_reference_simulation_reproduces_predict(case) -> None:
    """The reference simulation of the description on ``preprocess(obs)`` picks ``predict``'s actions.

    Agreement >= 0.99 rather than equality: ``predict`` runs in float32 (SDN's compiled path, the
    converted policy's fast IF simulation, CVTC's torch/numba spike times) and the reference simulation in
    float64, so a membrane within float32 rounding of the threshold (or two nearly equal scores) can
    flip one spike or one argmax; on these seeds they agree everywhere.
    """
    policy, obs = case
    description = policy.spiking_description()
    result = simulate(description, policy.preprocess(th.as_tensor(obs)).numpy())
    actions = policy.predict(obs, deterministic=True)[0]
    assert result.outputs.shape == (len(obs), _n_outputs(policy.action_space))
    if isinstance(policy.action_space, spaces.Box):  # squashed readout: the same actions within 1e-4 of the range
        span = policy.action_space.high - policy.action_space.low
        assert np.all(np.abs(result.actions - actions) <= 1e-4 * span)
        return
    assert np.mean(result.actions == actions) >= 0.99


def test_parameter_bytes_are_the_acting_parameters(case) -> None:
    """float32 bytes of exactly the weights and biases that act: counted here from the spiking description
    (for CVTC the online network only, not the target copy)."""
    policy, _ = case
    description = policy.spiking_description()
    expected = 4 * sum(layer.n_synapses + (0 if layer.bias is None else layer.bias.size) for layer in description.layers)
    assert policy.parameter_bytes() == expected
    if isinstance(policy, CVTCPolicy):
        assert 2 * policy.parameter_bytes() == 4 * sum(p.numel() for p in policy.parameters())


def test_cost_report(case) -> None:
    policy, obs = case
    training = policy.training
    report = policy.cost_report(obs[:16])
    assert isinstance(report, CostReport) and policy.training == training
    assert report.synops >= 0 and all(value >= 0 for value in report.synops_per_layer.values())
    assert report.synops == pytest.approx(sum(report.synops_per_layer.values()))
    assert report.ann_macs > 0 and all(0.0 <= rate <= 1.0 for rate in report.firing_rates.values())
    single = policy.cost_report(obs[0])  # one observation, as predict takes it
    assert isinstance(single, CostReport) and single.synops >= 0

"""Discrete, MultiDiscrete and MultiBinary observations for the CVTC and SDN policies (as SB3's MLP takes them).

CVTC codes the one-hot / bit vector with one input neuron per bit (1: early spike ``z = 1``, 0: late ``z = 6``);
SDN presents it as a constant current. Each policy trains a few hundred steps on FrozenLake-v1 and on SB3's
identity environments, its spiking description takes the one-hot / bit vector (``input_shape`` its length)
and the reference simulation reproduces ``predict``. A Dict observation is refused with a clear error.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvMultiBinary, IdentityEnvMultiDiscrete
from stable_baselines3.common.preprocessing import get_flattened_obs_dim

from sb3_snn import DDQN, SDN, CVTCPolicy, SDNPolicy
from sb3_snn.cvtc.encoders import PopulationEncoder
from sb3_snn.spiking import simulate


class DiscreteActions(gym.ActionWrapper):
    """A Discrete action space in front of an identity environment whose actions are MultiDiscrete or
    MultiBinary (DQN-style policies need Discrete actions): action ``k`` is the ``k``-th joint action."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.action_space
        self.nvec = np.full(space.n, 2) if isinstance(space, spaces.MultiBinary) else np.asarray(space.nvec)
        self.action_space = spaces.Discrete(int(np.prod(self.nvec)))

    def action(self, action: int) -> np.ndarray:
        return np.array(np.unravel_index(int(action), tuple(self.nvec)))


def _env(name: str) -> gym.Env:
    if name == "FrozenLake-v1":
        return gym.make("FrozenLake-v1", is_slippery=False)
    if name == "IdentityEnv":
        return IdentityEnv(4, ep_length=20)
    if name == "IdentityEnvMultiDiscrete":
        return DiscreteActions(IdentityEnvMultiDiscrete(3, ep_length=20))
    return DiscreteActions(IdentityEnvMultiBinary(3, ep_length=20))


ENVS = ["FrozenLake-v1", "IdentityEnv", "IdentityEnvMultiDiscrete", "IdentityEnvMultiBinary"]
FAST = dict(learning_starts=50, batch_size=16, train_freq=4, target_update_interval=50, seed=0, device="cpu")


def _observations(space: spaces.Space, n: int = 64) -> np.ndarray:
    space.seed(0)
    return np.stack([np.asarray(space.sample()) for _ in range(n)])


def _check_description(policy, obs: np.ndarray, space: spaces.Space) -> None:
    """The description takes the one-hot / bit vector and the reference simulation reproduces ``predict``."""
    policy.set_training_mode(False)
    width = int(get_flattened_obs_dim(space))
    description = policy.spiking_description()
    assert description.input_shape == (width,)
    inputs = policy.preprocess(th.as_tensor(obs)).numpy()
    assert inputs.shape == (len(obs), width) and set(np.unique(inputs)) <= {0.0, 1.0}
    actions = policy.predict(obs, deterministic=True)[0]
    assert actions.shape == (len(obs),)
    assert np.mean(simulate(description, inputs).actions == actions) >= 0.99
    single = policy.predict(obs[0], deterministic=True)[0]
    assert np.shape(single) == () and single == actions[0]


@pytest.mark.parametrize("env_name", ENVS)
@pytest.mark.parametrize("algo", [DQN, DDQN])
def test_cvtc_trains_on_bit_coded_observations(algo, env_name: str) -> None:
    env = _env(env_name)
    model = algo("CVTCPolicy", env, policy_kwargs=dict(net_arch=[16]), **FAST)
    model.learn(300)
    assert model.policy.q_net.encoder.bits
    _check_description(model.policy, _observations(env.observation_space), env.observation_space)


def test_cvtc_bit_code_spike_times() -> None:
    """A 1 bit spikes at z = 1 (t = 0), a 0 bit at z = 6 (t = ln 6), in the policy and in its description."""
    policy = CVTCPolicy(spaces.MultiBinary(5), spaces.Discrete(2), lambda _: 1e-3, net_arch=[4])
    bits = th.tensor([[1, 0, 1, 1, 0]])
    z = policy.q_net.encoder(policy.preprocess(bits))
    np.testing.assert_array_equal(z.numpy(), [[1.0, 6.0, 1.0, 1.0, 6.0]])
    encoding = policy.spiking_description().encoding
    assert encoding["kind"] == "population_temporal" and encoding["input"] == "bits"
    assert (encoding["z_bit_1"], encoding["z_bit_0"]) == (1.0, 6.0)
    onehot = CVTCPolicy(spaces.Discrete(3), spaces.Discrete(2), lambda _: 1e-3, net_arch=[4])
    np.testing.assert_array_equal(onehot.q_net.encoder(onehot.preprocess(th.tensor([2]))).numpy(), [[6.0, 6.0, 1.0]])
    with pytest.raises(ValueError, match="bit code"):
        CVTCPolicy(spaces.Discrete(3), spaces.Discrete(2), lambda _: 1e-3, encoder="cartpole")
    with pytest.raises(ValueError, match="z_early"):
        PopulationEncoder.for_bits(3, z_early=7.0)


@pytest.mark.parametrize("env_name", ENVS)
def test_sdn_distils_a_dqn_teacher_on_one_hot_observations(env_name: str) -> None:
    """A DQN teacher trained on the same environment; the student (a constant current of the one-hot / bit vector)
    learns its greedy actions: agreement on the observations it is tested on well above chance."""
    env = _env(env_name)
    teacher = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[32]), **FAST)
    teacher.learn(300)
    with th.no_grad():  # a teacher whose greedy actions differ across observations (not a constant policy)
        teacher.q_net.q_net[-1].weight.add_(th.randn_like(teacher.q_net.q_net[-1].weight))
    student = SDN("SDNPolicy", _env(env_name), teacher=teacher, learning_starts=50, batch_size=32, train_freq=1,
                  learning_rate=3e-3, policy_kwargs=dict(net_arch=[32]), seed=0, device="cpu")
    student.learn(250)
    obs = _observations(env.observation_space)
    _check_description(student.policy, obs, env.observation_space)
    agreement = np.mean(student.predict(obs, deterministic=True)[0] == teacher.predict(obs, deterministic=True)[0])
    assert agreement >= 0.8, agreement


@pytest.mark.parametrize("make", [
    lambda space: CVTCPolicy(space, spaces.Discrete(2), lambda _: 1e-3),
    lambda space: SDNPolicy(space, spaces.Discrete(2), lambda _: 1e-3),
])
def test_dict_and_tuple_observations_are_refused(make) -> None:
    for space in (spaces.Dict({"a": spaces.Discrete(3)}), spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2)))):
        with pytest.raises(ValueError, match=f"{type(space).__name__}.*Dict and Tuple observations are not supported"):
            make(space)


@pytest.mark.parametrize("policy_class", [CVTCPolicy, SDNPolicy])
def test_multidimensional_multibinary_is_flattened(policy_class) -> None:
    """A MultiBinary((3, 2)) observation is 6 bits, flattened as SB3's MLP flattens it."""
    policy = policy_class(spaces.MultiBinary((3, 2)), spaces.Discrete(2), lambda _: 1e-3, net_arch=[4])
    policy.set_training_mode(False)
    obs = _observations(policy.observation_space, 8)
    assert policy.preprocess(th.as_tensor(obs)).shape == (8, 6)
    assert policy.spiking_description().input_shape == (6,)
    assert policy.predict(obs, deterministic=True)[0].shape == (8,)

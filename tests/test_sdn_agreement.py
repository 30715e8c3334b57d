"""Agreement of an SDN student with its teacher on the teacher's own states: the helpers, the input
standardisation the defaults rely on, and (expensive) the defaults against a quickly trained DQN."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from sb3_snn import SDN, DistillationCallback
from sb3_snn.sdn.evaluation import agreement_on_states, teacher_states
from sb3_snn.sdn.network import SpikingStudent
from sb3_snn.spiking import simulate


def _tiny_teacher(steps: int = 100) -> DQN:
    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        learning_starts=50,
        buffer_size=500,
        batch_size=16,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    return model.learn(steps)


def test_teacher_states_and_agreement() -> None:
    teacher = _tiny_teacher()
    states = teacher_states(teacher, make_vec_env("CartPole-v1", n_envs=1), n=50, epsilon=0.1, seed=3)
    assert states.shape == (50, 4)
    again = teacher_states(teacher, make_vec_env("CartPole-v1", n_envs=1), n=50, epsilon=0.1, seed=3)
    np.testing.assert_array_equal(states, again)  # seeded: the same held-out states
    assert agreement_on_states(teacher, teacher, states) == 1.0
    constant = agreement_on_states(lambda obs: np.zeros(len(obs), dtype=int), teacher, states)
    expected = float(np.mean(teacher.predict(states, deterministic=True)[0] == 0))
    assert constant == pytest.approx(expected)
    with pytest.raises(ValueError, match="epsilon"):
        teacher_states(teacher, make_vec_env("CartPole-v1", n_envs=1), n=10, epsilon=1.5)


def test_callback_keeps_the_students_own_settings() -> None:
    student = SDN("SDNPolicy", gym.make("CartPole-v1"), temperature=0.3, alpha=0.5, learning_starts=10_000)
    student.learn(10, callback=DistillationCallback(_tiny_teacher()))
    assert (student.temperature, student.alpha) == (0.3, 0.5)
    student.learn(10, callback=DistillationCallback(_tiny_teacher(), temperature=4.0))
    assert (student.temperature, student.alpha) == (4.0, 0.5)


def test_input_norm_is_the_default_for_vector_observations_and_folds_into_the_description() -> None:
    student = SDN("SDNPolicy", gym.make("CartPole-v1"), seed=0, policy_kwargs=dict(net_arch=[16], n_steps=4))
    network = student.policy.network
    assert network.input_norm
    obs = th.as_tensor(np.random.default_rng(0).normal([0, 0, 0, 0], [0.5, 0.3, 0.02, 0.4], (256, 4)), dtype=th.float32)
    network.calibrate(obs, 0.1)
    th.testing.assert_close(network.input_shift, obs.mean(0))
    th.testing.assert_close(network.input_scale, obs.std(0, unbiased=False))
    student.policy.set_training_mode(False)
    logits = student.policy(obs).detach().numpy()
    actions = student.predict(obs.numpy(), deterministic=True)[0]  # the compiled CPU path
    np.testing.assert_array_equal(actions, logits.argmax(1))
    reference = simulate(student.policy.spiking_description(), obs.numpy().astype(np.float64))
    np.testing.assert_allclose(reference.outputs, logits, atol=1e-4)  # the standardisation folded into fc1


def test_student_saved_without_input_buffers_loads_as_identity() -> None:
    network = SpikingStudent((4,), 2, net_arch=[8], input_norm=True)
    state = {k: v for k, v in network.state_dict().items() if not k.startswith("input_")}
    fresh = SpikingStudent((4,), 2, net_arch=[8], input_norm=True)
    fresh.input_scale.fill_(3.0)
    fresh.load_state_dict(state)
    assert float(fresh.input_scale[0]) == 3.0  # missing buffers keep their values, no error
    with pytest.raises(ValueError, match="input_norm"):
        SpikingStudent((1, 8, 8), 2, conv_arch=[(4, 3, 1)], input_norm=True)


@pytest.mark.expensive
def test_defaults_agree_with_a_quickly_trained_dqn_on_its_states() -> None:
    th.set_num_threads(1)
    teacher = DQN(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=1, seed=0),
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=0,
    ).learn(20_000)
    states = teacher_states(teacher, make_vec_env("CartPole-v1", n_envs=1), n=1000, epsilon=0.05, seed=10_000)
    student = SDN("SDNPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=1), seed=1)
    student.learn(10_000, callback=DistillationCallback(teacher))
    assert agreement_on_states(student, teacher, states) >= 0.85


def test_pipeline_table_shows_agreement_on_the_teachers_states() -> None:
    from sb3_snn.pipeline.summary import COLUMNS, render_table, summary_rows

    base = {"kind": "k", "mean_score": 500.0, "std_score": 0.0, "agreement": 0.55, "parameter_bytes": 1800}
    evaluation = [
        {**base, "agent": "teacher", "agreement": 1.0, "teacher_state_agreement": 1.0},
        {**base, "agent": "sdn", "teacher_state_agreement": 0.951234},
        {**base, "agent": "old"},  # an evaluation recorded without the column
    ]
    rows = {row["agent"]: row for row in summary_rows(evaluation, None, None)}
    column = "agreement (teacher's states)"
    assert column in COLUMNS and COLUMNS.index(column) == COLUMNS.index("agreement") + 1
    assert rows["sdn"][column] == 0.9512 and rows["sdn"]["agreement"] == 0.55
    assert rows["old"][column] is None
    assert column in render_table(list(rows.values()))

"""Episodes of the conversion evaluation (``run_episodes``): seeded per episode, and a cut episode ends its game."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN

from sb3_snn.conversion.evaluation import run_episodes


class Recorder:
    """Wraps an actor (or acts NOOP) and keeps every observation it is shown, plus ``note()``'s value."""

    def __init__(self, actor: Any = None, note: Any = None) -> None:
        self.actor, self.note = actor, note
        self.seen: list[tuple[bytes, Any]] = []

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        self.seen.append((np.asarray(obs).tobytes(), self.note() if self.note else None))
        if self.actor is None:
            return np.zeros(len(obs), dtype=np.int64), None
        return self.actor.predict(obs, deterministic=deterministic)


def test_episode_replays_the_same_whatever_its_place_in_the_run() -> None:
    """Episode ``i`` of a run with seed ``s`` equals a one-episode run with seed ``s + i`` (env and epsilon draws),
    so settings can be compared episode by episode."""
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10**6, seed=0)
    run_of_three = Recorder(model)
    out = run_episodes(run_of_three, gym.make("CartPole-v1"), 3, epsilon=0.5, seed=10)
    alone = Recorder(model)
    single = run_episodes(alone, gym.make("CartPole-v1"), 1, epsilon=0.5, seed=12)
    lengths = out["n_steps"], single["n_steps"]
    assert single["scores"] == out["scores"][2:]
    assert alone.seen == run_of_three.seen[lengths[0] - lengths[1]:]
    cut = run_episodes(model, gym.make("CartPole-v1"), 2, seed=0, max_episode_steps=5)  # no EpisodicLifeEnv: fine
    assert cut["truncated"] == 2 and cut["n_steps"] == 10


@pytest.mark.parametrize("workers", [False, True])
def test_cut_atari_episode_starts_a_new_game(workers: bool) -> None:
    """After ``max_episode_steps`` the next episode starts a new, reseeded game (SB3's ``EpisodicLifeEnv`` would
    otherwise go on with the old one), also when the env runs in a worker process."""
    ale_py = pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack

    gym.register_envs(ale_py)

    def play(n_episodes: int, seed: int) -> tuple[dict[str, Any], Recorder]:
        vec_env_cls = SubprocVecEnv if workers else DummyVecEnv
        vec_env_kwargs = {"start_method": "fork"} if workers else None  # the worker inherits ALE's registration
        venv = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=0, vec_env_cls=vec_env_cls,
                                            vec_env_kwargs=vec_env_kwargs), n_stack=4)
        note = None if workers else venv.unwrapped.envs[0].unwrapped.ale.getEpisodeFrameNumber
        recorder = Recorder(note=note)
        try:
            return run_episodes(recorder, venv, n_episodes, epsilon=0.0, seed=seed, max_episode_steps=40), recorder
        finally:
            venv.close()

    out, run = play(3, seed=5)
    assert out["truncated"] == 3 and out["n_steps"] == 120
    if not workers:
        starts = [run.seen[k][1] for k in (0, 40, 80)]
        assert all(frame < 100 for frame in starts), starts  # no-op starts (<= 30 frames) + FIRE, not 160+ frames on
    _, alone = play(1, seed=6)
    assert alone.seen == run.seen[40:80]

"""One seeded, epsilon-greedy episode loop with per-step hooks, for every evaluation that plays an agent.

:func:`play_episodes` plays one environment; on every agent step it asks the actor for its greedy
action, times that call, hands the observation and the greedy action to each hook (agreement with a
reference policy, SynOps, anything), then acts epsilon-greedily. Hooks here: :class:`Agreement`,
:class:`ActionError` (its counterpart for Box actions) and :class:`CostSum`.

Why not SB3's ``evaluate_policy``: its ``callback`` sees every step, but the loop itself does not fit.
It resets the environment once and relies on auto-reset, so episode ``i`` cannot be reseeded with
``seed + i`` (which makes an episode replay the same whatever its place in a run, and settings comparable
episode by episode); it has no epsilon-greedy acting, no cap on an episode's steps (nor the real reset a
cut Atari game needs, see :func:`request_real_reset`), and it does not time the actor apart from the
environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_snn.common.models import greedy_actions
from sb3_snn.spiking.synops import CostReport

#: A per-step hook: called with the observation ``[1, *shape]`` and the actor's greedy action ``[1]``.
StepHook = Callable[[np.ndarray, np.ndarray], None]


class Agreement:
    """Counts the steps where a reference agent's greedy action equals the actor's, on the same observation
    (the conversion rate of Tan et al. 2021, the agreement of a student with its teacher).

    :param reference: anything with SB3's ``predict``, or a function of observations returning actions
    """

    def __init__(self, reference: Any) -> None:
        self.act = greedy_actions(reference)
        self.matches = 0
        self.steps = 0

    def __call__(self, obs: np.ndarray, greedy: np.ndarray) -> None:
        self.matches += int((self.act(obs) == greedy).sum())
        self.steps += 1

    @property
    def rate(self) -> float:
        """Share of agreeing steps (NaN before any step)."""
        return self.matches / self.steps if self.steps else float("nan")


class ActionError:
    """Mean absolute difference between the actor's action and a reference agent's on the same observation,
    relative to the action range: ``mean_i |a_i - a_ref,i| / (high_i - low_i)`` per step, averaged over the
    steps (Box actions, where agreement of exact actions means nothing).

    :param reference: anything with SB3's ``predict``, or a function of observations returning actions
    :param space: the Box action space (its bounds give the range)
    """

    def __init__(self, reference: Any, space: spaces.Box) -> None:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"ActionError needs a bounded Box action space, got {space}")
        self.act = greedy_actions(reference)
        self.range = np.asarray(space.high - space.low, dtype=np.float64).reshape(-1)
        self.total = 0.0
        self.steps = 0

    def __call__(self, obs: np.ndarray, greedy: np.ndarray) -> None:
        reference = self.act(obs).reshape(-1, self.range.size)
        actions = np.asarray(greedy, dtype=np.float64).reshape(-1, self.range.size)
        self.total += float(np.mean(np.abs(actions - reference) / self.range))
        self.steps += 1

    @property
    def mean(self) -> float:
        """Mean relative action error per step (NaN before any step)."""
        return self.total / self.steps if self.steps else float("nan")


class CostSum:
    """Sums the cost of acting (SynOps, analog input MACs, firing rates) over the steps it measures.

    :param cost: the :class:`~sb3_snn.spiking.synops.CostReport` of the step's observation (for a spiking
        policy, ``policy.cost_report``; or figures of the simulation the actor just ran)
    :param every: measure one step in ``every`` (the first of the run, then every ``every``-th)
    """

    def __init__(self, cost: Callable[[np.ndarray], CostReport], every: int = 1) -> None:
        self.cost, self.every = cost, int(every)
        self.synops = self.input_macs = 0.0
        self.rates: dict[str, float] = {}
        self.measured = 0
        self._steps = 0

    def __call__(self, obs: np.ndarray, greedy: np.ndarray) -> None:
        self._steps += 1
        if (self._steps - 1) % self.every:
            return
        report = self.cost(obs)
        self.synops += report.synops
        self.input_macs += report.input_macs
        for name, rate in report.firing_rates.items():
            self.rates[name] = self.rates.get(name, 0.0) + rate
        self.measured += 1

    def mean_rates(self) -> dict[str, float]:
        """Firing rate per layer averaged over the measured steps."""
        return {name: total / max(self.measured, 1) for name, total in self.rates.items()}


@dataclass
class EpisodeRun:
    """What :func:`play_episodes` measured.

    :param scores: return of every finished episode (the ``Monitor``'s unclipped return when the env has one)
    :param lengths: its length (the ``Monitor``'s when there is one, else agent steps)
    :param n_steps: agent steps in all
    :param truncated: episodes stopped at ``max_episode_steps``
    :param seconds: time spent in the actor (greedy actions), environment and hooks excluded
    """

    scores: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    n_steps: int = 0
    truncated: int = 0
    seconds: float = 0.0


def request_real_reset(venv: VecEnv) -> None:
    """Make the next ``reset()`` start a new game after an episode cut short by ``max_episode_steps``.

    SB3's ``EpisodicLifeEnv`` (in ``AtariWrapper``) resets the game only after a real game over; after a
    cut it would take one no-op step and go on with the old game, ignoring the new episode's seed (and the
    ``Monitor`` below it would add the old game's rewards to the next score). Its ``was_real_done`` flag is
    set through gymnasium's ``set_wrapper_attr`` (any vector env, in its workers too); envs without that
    wrapper are left as they are.

    :param venv: the vectorised environment
    """
    venv.env_method("set_wrapper_attr", "was_real_done", True, force=False)


def play_episodes(
    actor: Any,
    env: gym.Env | VecEnv,
    n_episodes: int,
    epsilon: float = 0.0,
    seed: int | None = 0,
    max_episode_steps: int | None = None,
    max_steps: int | None = None,
    hooks: Sequence[StepHook] = (),
    on_episode_start: Callable[[], None] | None = None,
) -> EpisodeRun:
    """Play ``n_episodes`` with ``actor`` acting epsilon-greedily in one environment.

    Every episode starts with a reset. A step: the actor's greedy action (timed), each hook with the
    observation and that action, then one uniform draw ``u`` and, if ``u < epsilon``, a uniformly random
    action instead. An episode ends at the ``Monitor``'s episode end (a lost life of an Atari game with
    ``terminal_on_life_loss`` does not end it) or, without a ``Monitor``, at any ``done``.

    :param actor: anything with SB3's ``predict``, or a function from observations to greedy actions
    :param env: a single-env ``VecEnv`` or a ``gym.Env`` (wrapped in a ``Monitor``)
    :param n_episodes: episodes to play
    :param epsilon: probability of a uniformly random action (a ``Discrete`` action space is needed when > 0)
    :param seed: episode ``i`` seeds the environment and its own epsilon draws with ``seed + i``, so an
        episode replays the same whatever its place in a run (``None``: unseeded)
    :param max_episode_steps: stop an episode after this many agent steps (its wrapper-level return is
        its score, and it counts as truncated; the next episode starts a new game)
    :param max_steps: stop the run after this many agent steps in all (the unfinished episode is not scored)
    :param hooks: called on every step with ``(obs, greedy_action)``
    :param on_episode_start: called after every episode's reset, before its first action (an actor that
        keeps state between steps, such as membranes carried over, starts the episode from rest)
    """
    venv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: Monitor(env)])
    if venv.num_envs != 1:
        raise ValueError(f"play_episodes plays one environment at a time (num_envs == 1), got {venv.num_envs}")
    discrete = isinstance(venv.action_space, spaces.Discrete)
    if epsilon > 0 and not discrete:
        raise ValueError(f"epsilon-greedy acting needs a Discrete action space, got {venv.action_space}; use epsilon=0")
    monitored = bool(venv.env_is_wrapped(Monitor)[0])
    act = greedy_actions(actor)
    run = EpisodeRun()
    for episode in range(n_episodes):
        episode_seed = None if seed is None else seed + episode
        if episode_seed is not None:
            venv.seed(episode_seed)
        rng = np.random.default_rng(episode_seed)  # epsilon draws of this episode only
        obs: Any = venv.reset()
        if on_episode_start is not None:
            on_episode_start()
        total, length = 0.0, 0
        while True:
            if max_steps is not None and run.n_steps >= max_steps:
                return run
            start = time.perf_counter()
            greedy = act(obs)
            run.seconds += time.perf_counter() - start
            for hook in hooks:
                hook(obs, greedy)
            if discrete:
                n_actions = int(venv.action_space.n)  # type: ignore[attr-defined]
                action = np.array([rng.integers(n_actions) if rng.random() < epsilon else int(greedy[0])])
            else:
                action = greedy.reshape(1, *(venv.action_space.shape or ()))
            obs, rewards, dones, infos = venv.step(action)
            total += float(rewards[0])
            length += 1
            run.n_steps += 1
            if dones[0]:
                if monitored and "episode" not in infos[0]:
                    continue  # a life lost (terminal_on_life_loss): the game goes on
                run.scores.append(float(infos[0]["episode"]["r"]) if monitored else total)
                run.lengths.append(int(infos[0]["episode"]["l"]) if monitored else length)
                break
            if max_episode_steps is not None and length >= max_episode_steps:
                run.scores.append(total)  # wrapper-level (e.g. clipped) return of the truncated episode
                run.lengths.append(length)
                run.truncated += 1
                request_real_reset(venv)
                break
    return run

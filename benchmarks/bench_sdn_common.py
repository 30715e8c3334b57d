"""Helpers shared by the SDN benchmarks: evaluation with agreement, latency, the machine record."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine as describe_machine  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.sdn import SDN, Teacher


def machine() -> str:
    """Where the figures were measured (CPU, cores, torch, threads, GPU)."""
    return describe_machine("cuda" if th.cuda.is_available() else "cpu")


def play(model: Any, env: VecEnv, episodes: int, teacher: Teacher | None = None, max_steps: int = 100_000) -> dict[str, Any]:
    """Greedy episodes of ``model`` on a 1-env ``VecEnv`` (Monitor-wrapped, so rewards are the real ones);
    with ``teacher``, the share of steps where the teacher would have taken the same action, and the
    student's spike statistics over the visited observations.

    :param model: anything with ``predict``
    :param env: the evaluation environment
    :param episodes: episodes to play
    :param teacher: the teacher to compare with
    :param max_steps: a cap on agent steps in all
    """
    rewards, lengths, agree, total, synops, rates, teacher_actions = [], [], 0, 0, [], [], []
    obs = env.reset()
    steps = 0
    while len(rewards) < episodes and steps < max_steps:
        action, _ = model.predict(obs, deterministic=True)
        if teacher is not None:
            obs_tensor = th.as_tensor(obs, device=model.device)
            teacher_action = teacher.logits(obs_tensor).argmax(1).cpu().numpy()
            teacher_actions.extend(teacher_action.tolist())
            agree += int((teacher_action == action).sum())
            total += len(action)
            if isinstance(model, SDN) and steps % 10 == 0:
                report = model.policy.cost_report()
                synops.append(report.synops)
                rates.append(report.firing_rates)
        obs, _, dones, infos = env.step(action)
        steps += 1
        for done, info in zip(dones, infos):
            if done and "episode" in info:
                rewards.append(float(info["episode"]["r"]))
                lengths.append(int(info["episode"]["l"]))
    result: dict[str, Any] = {
        "mean": float(np.mean(rewards)) if rewards else float("nan"), "std": float(np.std(rewards)) if rewards else float("nan"),
        "rewards": rewards, "lengths": lengths, "agent_steps": steps,
    }
    if teacher is not None:
        result["agreement"] = agree / max(total, 1)
        # baseline for the agreement: always answering the teacher's most frequent action
        result["teacher_majority_rate"] = float(np.bincount(teacher_actions).max() / max(len(teacher_actions), 1))
    if synops:
        result["synops_per_action"] = float(np.mean(synops))
        result["firing_rates"] = {k: float(np.mean([r[k] for r in rates])) for k in rates[0]}
    return result


def latency_ms(forward: Any, obs: th.Tensor, repeats: int = 300) -> float:
    """Median milliseconds of ``forward(obs)`` (no grad), after a warm-up.

    :param forward: a callable taking a batch
    :param obs: the batch (one observation for per-action latency)
    :param repeats: timed calls
    """
    times = []
    with th.no_grad():
        for _ in range(20):
            forward(obs)
        for _ in range(repeats):
            start = time.perf_counter()
            forward(obs)
            times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def steps_per_second(train: Any, gradient_steps: int) -> float:
    """Gradient steps per second of ``train(gradient_steps)`` (one warm-up call first)."""
    train(5)
    start = time.perf_counter()
    train(gradient_steps)
    return gradient_steps / (time.perf_counter() - start)

"""Helpers shared by the SDN benchmarks: evaluation with agreement, latency, the machine record."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine as describe_machine
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.evaluation import Agreement, CostSum, play_episodes
from sb3_snn.common.models import acting_network, parameter_bytes
from sb3_snn.sdn import SDN, Teacher

from benchmarks.timing import interleaved

#: what the latency benchmarks aim for
LATENCY_TARGET = ("student per-action latency >= 5x lower than the teacher's on CPU "
                  "(model.predict, one observation, 1 torch thread)")


def machine() -> str:
    """Where the figures were measured (CPU, cores, torch, threads, GPU)."""
    return describe_machine("cuda" if th.cuda.is_available() else "cpu")


def play(model: Any, env: VecEnv, episodes: int, teacher: Teacher | None = None, max_steps: int = 100_000) -> dict[str, Any]:
    """Greedy episodes of ``model`` on a 1-env ``VecEnv`` (Monitor-wrapped, so rewards are the real ones),
    unseeded (:func:`sb3_snn.common.evaluation.play_episodes`); with ``teacher``, the share of steps where the
    teacher would have taken the same action, and the student's spike statistics (its ``cost_report``) on
    every 10th visited observation.

    :param model: anything with ``predict``
    :param env: the evaluation environment
    :param episodes: episodes to play
    :param teacher: the teacher to compare with
    :param max_steps: a cap on agent steps in all
    """
    hooks: list[Any] = []
    teacher_actions: list[int] = []
    agreement = cost = None
    if teacher is not None:
        def teacher_greedy(obs: np.ndarray) -> np.ndarray:
            actions = teacher.logits(th.as_tensor(obs, device=model.device)).argmax(1).cpu().numpy()
            teacher_actions.extend(actions.tolist())
            return actions

        agreement = Agreement(teacher_greedy)
        hooks.append(agreement)
        if isinstance(model, SDN):
            cost = CostSum(model.policy.cost_report, every=10)
            hooks.append(cost)
    run = play_episodes(model, env, episodes, epsilon=0.0, seed=None, max_steps=max_steps, hooks=hooks)
    result: dict[str, Any] = {
        "mean": float(np.mean(run.scores)) if run.scores else float("nan"),
        "std": float(np.std(run.scores)) if run.scores else float("nan"),
        "rewards": run.scores, "lengths": run.lengths, "agent_steps": run.n_steps,
    }
    if agreement is not None:
        result["agreement"] = agreement.matches / max(agreement.steps, 1)
        # baseline for the agreement: always answering the teacher's most frequent action
        result["teacher_majority_rate"] = float(np.bincount(teacher_actions).max() / max(len(teacher_actions), 1))
    if cost is not None and cost.measured:
        result["synops_per_action"] = cost.synops / cost.measured
        result["firing_rates"] = cost.mean_rates()
    return result


def steps_per_second(train: Any, gradient_steps: int) -> float:
    """Gradient steps per second of ``train(gradient_steps)`` (one warm-up call first)."""
    train(5)
    start = time.perf_counter()
    train(gradient_steps)
    return gradient_steps / (time.perf_counter() - start)


def interleaved_latency(
    calls: dict[str, Callable[[], Any]], repeats: int = 500, warmup: int = 30,
) -> dict[str, dict[str, float]]:
    """Median thread CPU and wall-clock milliseconds per call of each callable, the callables called in
    turn (:func:`benchmarks.timing.interleaved`), so that a shared machine's load falls on all of them alike.

    :param calls: name -> a callable taking no argument
    :param repeats: timed calls of each
    :param warmup: untimed calls of each first (JIT compilation, caches)
    :return: name -> ``{"cpu_ms": ..., "wall_ms": ...}``
    """
    timings = interleaved(calls, repeats=repeats, warmup=warmup)
    return {name: {"cpu_ms": t.cpu_ms, "wall_ms": t.wall_ms} for name, t in timings.items()}


def acting_forward(model: BaseAlgorithm) -> Callable[[th.Tensor], th.Tensor]:
    """The teacher's acting network as one call on raw observations (preprocessing included, no
    distribution object): :meth:`sb3_snn.common.models.ActingNetwork.scores` (``q_net`` of a DQN, the mean
    of QR-DQN's quantiles, features + actor + ``action_net`` of a PPO / A2C)."""
    return acting_network(model).scores


def latency_comparison(student: SDN, teacher: BaseAlgorithm, obs: np.ndarray, repeats: int = 500) -> dict[str, Any]:
    """Per-action latency of a student and a teacher on one observation, on the current device and
    torch threads, all calls interleaved (:func:`interleaved_latency`): median thread CPU time
    (``*_ms``) and wall-clock time (``*_wall_ms``), and the load average before and after.

    Entries (milliseconds): ``student_predict`` / ``teacher_predict``: ``model.predict(obs,
    deterministic=True)`` of the SDN model and of the teacher's SB3 model (what a user and
    ``evaluate_policy`` call; on the CPU the student's goes through the compiled path,
    :mod:`sb3_snn.sdn.lean`); ``student_torch_predict``: the student's torch inference path as ``predict``
    ran it before the compiled path (tensor conversion, ``forward_fast`` with the training's torch
    operations, argmax); ``student_sb3_predict``: SB3's generic ``BasePolicy.predict`` around the student
    policy; ``student_forward`` / ``teacher_forward``: the raw networks on a tensor (preprocessing
    included, the student through ``forward_fast``); ``student_nodes_forward``: the student through the
    spikingjelly nodes used in training, gradients off. Ratios > 1 mean the student is faster.
    Asserts first that the compiled path, the torch path and the training forward take the same action.

    :param student: the SDN model (its policy is used for the policy-level entries)
    :param teacher: the teacher model
    :param obs: one observation as the ``VecEnv`` gives it (``[1, *shape]``)
    :param repeats: timed calls of each
    """
    policy = student.policy
    obs_tensor = th.as_tensor(obs, device=policy.device)
    teacher_net = acting_forward(teacher)
    policy.set_training_mode(False)
    teacher.policy.set_training_mode(False)

    def torch_predict() -> np.ndarray:
        with th.no_grad():
            return policy.network.forward_fast(policy.preprocess(th.as_tensor(obs))).argmax(1).numpy()

    student_action = student.predict(obs, deterministic=True)[0]
    with th.no_grad():
        nodes_action = policy.network.forward_nodes(policy.preprocess(obs_tensor)).argmax(1).cpu().numpy()
    assert np.array_equal(student_action, nodes_action) and np.array_equal(torch_predict(), nodes_action)
    calls: dict[str, Callable[[], Any]] = {
        "student_predict": lambda: student.predict(obs, deterministic=True),
        "teacher_predict": lambda: teacher.predict(obs, deterministic=True),
        "student_torch_predict": torch_predict,
        "student_sb3_predict": lambda: BasePolicy.predict(policy, obs, deterministic=True),
        "student_forward": lambda: policy(obs_tensor),
        "teacher_forward": lambda: teacher_net(obs_tensor),
        "student_nodes_forward": lambda: policy.network.forward_nodes(policy.preprocess(obs_tensor)),
    }
    load_before = os.getloadavg()
    with th.no_grad():
        times = interleaved_latency(calls, repeats)
    load_after = os.getloadavg()
    result: dict[str, Any] = {}
    for name, value in times.items():
        result[f"{name}_ms"], result[f"{name}_wall_ms"] = value["cpu_ms"], value["wall_ms"]
    cpu = {name: value["cpu_ms"] for name, value in times.items()}
    result.update(
        ratio_predict=cpu["teacher_predict"] / cpu["student_predict"],
        ratio_predict_wall=times["teacher_predict"]["wall_ms"] / times["student_predict"]["wall_ms"],
        ratio_forward=cpu["teacher_forward"] / cpu["student_forward"],
        compiled_path_speedup=cpu["student_torch_predict"] / cpu["student_predict"],
        fast_path_speedup=cpu["student_nodes_forward"] / cpu["student_forward"],
        goal_5x_met=cpu["teacher_predict"] / cpu["student_predict"] >= 5.0,
        load_average_before=list(load_before), load_average_after=list(load_after),
        repeats=repeats, torch_threads=th.get_num_threads(), student_n_steps=policy.n_steps,
        student_bytes=parameter_bytes(policy),
    )
    return result


def latency_fields(latency: dict[str, Any], ratio: str, forward_ratio: str) -> dict[str, float]:
    """The latency entries of a result row from a :func:`latency_comparison`: student and teacher
    ``predict`` milliseconds, and their ratios under the row layout's key names.

    :param latency: a :func:`latency_comparison` result
    :param ratio: the key of teacher/student ``predict`` (``latency_speedup`` on Pong, ``latency_ratio`` on CartPole)
    :param forward_ratio: the key of teacher/student raw forward
    """
    return {"latency_ms_student": latency["student_predict_ms"], "latency_ms_teacher": latency["teacher_predict_ms"],
            ratio: latency["ratio_predict"], forward_ratio: latency["ratio_forward"]}


def latency_text(name: str, latency: dict[str, Any]) -> str:
    """One line for a headline: student vs teacher milliseconds per action and the ratio."""
    verdict = "met" if latency["goal_5x_met"] else "not met"
    return (f"{name}: student {latency['student_predict_ms']:.3f} ms vs teacher {latency['teacher_predict_ms']:.3f} ms "
            f"per action (thread CPU), {latency['ratio_predict']:.2f}x ({latency['ratio_predict_wall']:.2f}x wall; "
            f"goal >= 5x: {verdict})")


def latency_note(command: str) -> str:
    """The note a result record carries about where its latency figures come from."""
    return (f"Latency figures (latency_*): `{command}`, measured separately from the scores, on untrained students "
            "of the rows' shapes (every operation is dense: the latency does not depend on the weights); "
            "model.predict(obs, deterministic=True) of the SDN model (compiled numba path on the CPU, "
            "sb3_snn/sdn/lean.py) and of the teacher's SB3 model, one observation, thread CPU time (and wall time), "
            "medians of interleaved calls after a warm-up (JIT compilation excluded), 1 torch thread. Ratios > 1: "
            "the student is faster. Details under 'latency' in the JSON (the student's torch inference path, "
            "SB3's generic predict, the raw forwards of both, the spikingjelly nodes used in training; load "
            "average before and after).")


def write_latency_record(record: dict[str, Any], score_lines: list[str], latency_lines: list[str], command: str,
                         out: Path) -> None:
    """Finish a result record after a latency-only run: target, a headline of the kept scores and the new
    latency lines, the latency note (replacing an older one), written to ``out`` as JSON."""
    import json

    record["target"] = LATENCY_TARGET
    record["headline"] = "; ".join([*score_lines, *latency_lines])
    record["notes"] = [note for note in record.get("notes", []) if not note.startswith("Latency")] + [latency_note(command)]
    out.write_text(json.dumps(record, indent=2, default=str))
    from common import save_rows

    save_rows(out.stem, record)


def score_lines(rows: dict[str, Any]) -> list[str]:
    """The scores part of a headline, one line per distilled student of ``rows`` (name -> result row, as
    the CartPole record's ``teachers`` and the Pong record's ``rows`` store them)."""
    lines = []
    for name, row in rows.items():
        if isinstance(row, dict) and "student" in row:
            teacher = f" vs teacher {row['teacher']['mean']:.1f}" if isinstance(row.get("teacher"), dict) else ""
            lines.append(f"{name}: student {row['student']['mean']:.1f} ± {row['student']['std']:.1f}{teacher}, agreement "
                         f"{row['student']['agreement']:.3f}, {row['size_ratio_acting']:.0f}x fewer bytes")
    return lines

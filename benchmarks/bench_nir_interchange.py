"""NIR interchange: graphs written by ``deployment.save("x.nir")`` run in snnTorch and norse, on held-out CartPole states.

    .venv/bin/python benchmarks/bench_nir_interchange.py [--quick]

Networks (CartPole-v1):

* converted DQN: the plain-SB3 DQNs with rl_zoo3's settings cached by ``bench_nc64c_agreement.py``
  (``benchmarks/out/nc64c_teachers/dqn_64x64_seed0.zip`` and ``dqn_256x256_seed1.zip``, trained there when
  missing), converted with ``sb3_snn.convert(model, env=..., timesteps=T, n_calibration=1000)`` (IF
  neurons, reset by subtraction, robust readout) and written with ``approximate_reset=True`` (NIR has no
  reset by subtraction);
* SDN student: distilled for 5 000 steps from ``dqn_64x64_seed0.zip`` (LIF neurons, a non-spiking readout);
* CVTC agent: ``benchmarks/out/pipeline/cvtc/cvtc.zip`` (the pipeline benchmark's agent) when present,
  else a CVTC DDQN trained here for ``--cvtc-steps`` steps; written beta-free (its ``"mostafa"`` inference,
  ``temporal_node="cuba_lif"``) and stepped at each ``--temporal-dt``.

Each deployment is saved as ``<name>.nir`` (+ ``<name>.nir.json``), then
:func:`sb3_snn.backends.nir_interchange.outputs_with` imports that file with each framework and runs it on
1 000 held-out states (the teacher's epsilon-greedy episodes, env seed 2; the CVTC agent's own
epsilon-greedy episodes). Agreement of the framework's greedy actions with the original policy (the
description's reference simulation: for the converted DQN the float SNN with reset by subtraction, for the
CVTC agent its exact beta-free spike times) and with the graph's own network (the reference simulation of
what the file says). A framework that cannot express a network gets a row ``expressible = 0`` with the
reason. Writes ``benchmarks/out/results/nir_interchange.json`` and appends rows to
``benchmarks/records/nir_interchange.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nc64c_agreement import states, teacher
from common import ROOT, machine, write_result

OUT = ROOT / "benchmarks" / "out" / "nir_interchange"
CVTC_AGENT = ROOT / "benchmarks" / "out" / "pipeline" / "cvtc" / "cvtc.zip"
SUITE = "nir_interchange"


def cvtc_agent(steps: int):
    """The pipeline benchmark's CVTC agent, or one trained here (``steps``) when it is missing."""
    import sb3_snn

    if CVTC_AGENT.is_file():
        return sb3_snn.DDQN.load(CVTC_AGENT, device="cpu", buffer_size=1), str(CVTC_AGENT.relative_to(ROOT))
    model = sb3_snn.DDQN("CVTCPolicy", "CartPole-v1", seed=0, device="cpu", learning_starts=500)
    model.learn(steps)
    return model, f"CVTC DDQN trained here for {steps} steps"


def cvtc_states(model, n: int, seed: int) -> np.ndarray:
    """``n`` CartPole states of the CVTC agent's own epsilon = 0.05 episodes (env seeds ``seed``...)."""
    import gymnasium as gym

    env, rng, out = gym.make("CartPole-v1"), np.random.default_rng(seed), []
    episode = 0
    while len(out) < n:
        obs, _ = env.reset(seed=seed * 10_000 + episode)
        done = False
        while not done and len(out) < n:
            out.append(obs)
            action = env.action_space.sample() if rng.random() < 0.05 else int(model.predict(obs, deterministic=True)[0])
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        episode += 1
    return np.asarray(out, dtype=np.float64)


def measure(name: str, kind: str, deployment, held_out: np.ndarray, temporal_dt: float | None = None) -> list[dict[str, Any]]:
    """Save ``deployment`` as ``<name>.nir``, run the file in every framework, and compare actions."""
    from sb3_snn import backends
    from sb3_snn.backends import nir_interchange as interchange

    path = deployment.save(OUT / f"{name}.nir")
    original = backends.reference_simulate(deployment.description, held_out).actions
    graph = backends.reference_simulate(deployment.exported, held_out).actions
    rows = []
    for framework in interchange.FRAMEWORKS:
        row: dict[str, Any] = {
            "network": name,
            "kind": kind,
            "framework": framework,
            "file": str(path.relative_to(ROOT)),
            "n_held_out": len(held_out),
            "timesteps": deployment.description.timesteps,
            "approximations": deployment.approximations,
            "graph_vs_original": float(np.mean(graph == original)),
        }
        if kind == "cvtc":
            row["temporal_dt"] = temporal_dt
        t0 = time.perf_counter()
        try:
            step = {} if temporal_dt is None else {"temporal_dt": temporal_dt}
            actions = interchange.run_with(framework, path, held_out, **step)
        except backends.UnsupportedNetworkError as error:
            row.update(expressible=False, reason=str(error))
        else:
            row.update(
                expressible=True,
                agreement_with_original=float(np.mean(actions == original)),
                agreement_with_graph=float(np.mean(actions == graph)),
            )
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(row, flush=True)
        rows.append(row)
    return rows


def record_rows(rows: list[dict[str, Any]]) -> list:
    """Benchmark records (suite ``nir_interchange``): expressible (0/1) and agreements per network and framework."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.records import Row

    out = []
    for r in rows:
        setting = {
            "kind": r["kind"],
            "framework": r["framework"],
            "T": r["timesteps"],
            "training_seeds": 1,
            **({"temporal_dt": r["temporal_dt"]} if "temporal_dt" in r else {}),
        }
        extra = {
            "file": r["file"],
            "approximations": r["approximations"],
            "seconds": r["seconds"],
            **({"reason": r["reason"]} if "reason" in r else {}),
        }
        metrics = {"expressible": (float(r["expressible"]), "count")}
        if r["expressible"]:
            metrics["agreement_with_original"] = (r["agreement_with_original"], "fraction")
            metrics["agreement_with_graph"] = (r["agreement_with_graph"], "fraction")
        for metric, (value, unit) in metrics.items():
            out.append(
                Row(
                    suite=SUITE,
                    experiment="agreement",
                    method=r["network"],
                    env="CartPole-v1",
                    setting=setting,
                    seed=None,
                    metric=metric,
                    value=float(value),
                    stderr=None,
                    n=r["n_held_out"] if unit == "fraction" else None,
                    unit=unit,
                    extra=extra,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 held-out states, T = 50, coarser CVTC steps")
    parser.add_argument("--timesteps", type=int, default=200, help="T of the converted DQNs")
    parser.add_argument(
        "--temporal-dt", type=float, nargs="+", default=None, help="CVTC steps (default 1e-2 1e-3 1e-4; --quick 1e-2)"
    )
    parser.add_argument("--cvtc-steps", type=int, default=20_000, help="training steps when no CVTC agent is cached")
    parser.add_argument("--no-records", action="store_true", help="do not append to benchmarks/records")
    args = parser.parse_args()
    th.set_num_threads(1)  # small networks stepped one at a time: threads only fight over shared cores
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn import SDN, backends, convert
    from sb3_snn.backends.nir_interchange import DEFAULT_TEMPORAL_DT

    n_test = 200 if args.quick else 1000
    timesteps = 50 if args.quick else args.timesteps
    temporal_dts = args.temporal_dt or ([1e-2] if args.quick else [1e-2, DEFAULT_TEMPORAL_DT, 1e-4])
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for arch, seed in (((64, 64), 0), ((256, 256), 1)):
        model = teacher(arch, seed)
        policy = convert(model, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), timesteps=timesteps, n_calibration=1000)
        calibration, held_out = states(model, 200, 1), states(model, n_test, 2)
        deployment = backends.load("nir", approximate_reset=True).compile(policy, calibration)
        rows += measure(f"converted_dqn_{'x'.join(map(str, arch))}_seed{seed}", "converted", deployment, held_out)
    import gymnasium as gym

    model = teacher((64, 64), 0)
    student = SDN("SDNPolicy", gym.make("CartPole-v1"), teacher=model, seed=0, device="cpu", learning_starts=500)
    student.learn(5000)
    calibration, held_out = states(model, 200, 1), states(model, n_test, 2)
    rows += measure("sdn_student_64x64_seed0", "sdn", backends.load("nir").compile(student.policy, calibration), held_out)
    agent, source = cvtc_agent(args.cvtc_steps)
    agent.policy.set_inference("mostafa")
    calibration, held_out = cvtc_states(agent, 200, 1), cvtc_states(agent, n_test, 2)
    deployment = backends.load("nir").compile(agent.policy, calibration, temporal_node="cuba_lif")
    for temporal_dt in temporal_dts:  # the stepped simulation's resolution (graph time unit tau_syn = 1)
        rows += [{**r, "source": source} for r in measure("cvtc_agent", "cvtc", deployment, held_out, temporal_dt)]
    record = {
        "benchmark": "nir_interchange",
        "machine": machine(),
        "quick": args.quick,
        "n_held_out": n_test,
        "converted_timesteps": timesteps,
        "temporal_dts": temporal_dts,
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    path = write_result("nir_interchange_quick" if args.quick else "nir_interchange", record, rows=False)
    print(f"wrote {path}")
    if not (args.no_records or args.quick):  # a quick run checks the script, its figures are not records
        sys.path.insert(0, str(ROOT))
        from benchmarks.records import append_rows

        print(f"appended to {append_rows(SUITE, record_rows(rows))}")


if __name__ == "__main__":
    main()

"""Agreement of the NC64C chip model with the float SNN on held-out CartPole states, at the default widths.

    .venv/bin/python benchmarks/bench_nc64c_agreement.py [--quick] [--train-only]

Teachers: DQNs trained with plain Stable-Baselines3 and rl_zoo3's CartPole-v1 hyperparameters
(``hyperparams/dqn.yml``: lr 2.3e-3, batch 64, buffer 100k, learning_starts 1000, gamma 0.99,
target_update_interval 10, train_freq 256, gradient_steps 128, exploration_fraction 0.16,
exploration_final_eps 0.04, 5e4 steps), ``net_arch`` [256, 256] and [64, 64], seeds 0-2; cached under
``benchmarks/out/nc64c_teachers/`` (git-ignored). Each is converted as a new user would
(``sb3_snn.convert(model, env=..., timesteps=200, n_calibration=1000)``), compiled for ``nc64c`` at
the default widths on 1 000 example states (epsilon-greedy episodes of the teacher, seed 1; by default
800 calibrate and 200 give the report's own held-out figure), and compared with the float reference
simulation on 1 000 held-out states (other episodes, seed 2): batched, and one observation at a time
(``deployment.run(obs)`` with ``obs.shape == (4,)``). An SDN student distilled from the seed-0
[64, 64] teacher is measured the same way, and so are a plain-SB3 DQN trained on Acrobot-v1 with rl_zoo3's
settings (``hyperparams/dqn.yml``: lr 6.3e-4, batch 128, buffer 50k, learning_starts 0, gamma 0.99,
target_update_interval 250, train_freq 4, gradient_steps -1, exploration_fraction 0.12,
exploration_final_eps 0.1, net_arch [256, 256], 1e5 steps; converted the same way) and a Pong SDN student
distilled **briefly** (``sb3-snn train --algo sdn -conf sdn`` from ``../shared/fixtures/ppo_pong`` for 20 000
of the zoo config's 200 000 steps, or the run's latest checkpoint) and measured on frames of the teacher's
epsilon-greedy episodes. ``--networks`` picks the rows; the JSON keeps the rows of an earlier run that are
not measured again. Writes ``benchmarks/out/results/nc64c_agreement.json`` and appends rows to
``benchmarks/records/nc64c.jsonl`` (experiment ``agreement``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine, write_result, zoo_dqn_settings

TEACHERS = ROOT / "benchmarks" / "out" / "nc64c_teachers"
RESULTS_JSON = RESULTS / "nc64c_agreement.json"
#: rl_zoo3 hyperparams/dqn.yml, CartPole-v1 and Acrobot-v1 (net_arch set per teacher)
ZOO_CARTPOLE, ZOO_STEPS = zoo_dqn_settings("CartPole-v1")
ZOO_ACROBOT, ZOO_ACROBOT_STEPS = zoo_dqn_settings("Acrobot-v1")


def teacher(arch: tuple[int, ...], seed: int):
    """The cached (or freshly trained) plain-SB3 DQN for ``arch`` and ``seed``."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    path = TEACHERS / f"dqn_{'x'.join(map(str, arch))}_seed{seed}.zip"
    if path.is_file():
        return DQN.load(path, device="cpu", buffer_size=1)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=list(arch)), seed=seed, device="cpu", **ZOO_CARTPOLE)
    model.learn(ZOO_STEPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, exclude=["replay_buffer"])
    return model


def acrobot_teacher(seed: int = 0):
    """The cached (or freshly trained) plain-SB3 DQN for Acrobot-v1 with rl_zoo3's settings."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    path = TEACHERS / f"dqn_acrobot_seed{seed}.zip"
    if path.is_file():
        return DQN.load(path, device="cpu", buffer_size=1)
    env = make_vec_env("Acrobot-v1", n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu", **ZOO_ACROBOT)
    model.learn(ZOO_ACROBOT_STEPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, exclude=["replay_buffer"])
    return model


def teacher_score(model, episodes: int = 10, env_id: str = "CartPole-v1") -> float:
    """Mean return of the teacher's greedy policy over ``episodes`` episodes of ``env_id`` (seeds 100...)."""
    import gymnasium as gym

    env, total = gym.make(env_id), 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=100 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def states(model, n: int, seed: int, env_id: str = "CartPole-v1", env=None) -> np.ndarray:
    """``n`` states of ``env_id`` (or of ``env``) with the teacher playing epsilon = 0.05 (episodes seeded by ``seed``)."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn.conversion import collect_calibration_frames, extract_network

    env = env if env is not None else make_vec_env(env_id, n_envs=1, seed=seed)
    return collect_calibration_frames(extract_network(model), env, n, 0.05, seed).astype(np.float64)


#: the brief Pong SDN student: sb3_snn/configs/zoo/sdn.yml's PongNoFrameskip-v4 section, fewer steps
PONG_STUDENT_STEPS = 20_000
PONG_TEACHER = ROOT.parent / "shared" / "fixtures" / "ppo_pong" / "ppo_pong.zip"


def pong_student():
    """The briefly distilled Pong SDN student (``sb3-snn train --algo sdn -conf sdn`` from the PPO fixture for
    :data:`PONG_STUDENT_STEPS` steps; cached under ``benchmarks/out/nc64c_teachers/sdn_pong``), or the latest
    checkpoint of that run if it has not finished. Returns ``(student, steps)``."""
    import subprocess

    from sb3_snn import SDN

    logs = TEACHERS / "sdn_pong"
    final = logs / "sdn" / "PongNoFrameskip-v4_1" / "PongNoFrameskip-v4.zip"
    if not final.is_file() and not list(logs.glob("sdn/PongNoFrameskip-v4_1/checkpoint/*.zip")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sb3_snn",
                "train",
                "--algo",
                "sdn",
                "--env",
                "PongNoFrameskip-v4",
                "-conf",
                "sdn",
                "--teacher",
                str(PONG_TEACHER),
                "-n",
                str(PONG_STUDENT_STEPS),
                "--eval-freq",
                "-1",
                "--num-threads",
                "1",
                "--seed",
                "0",
                "-f",
                str(logs),
            ],
            check=True,
        )
    path = (
        final
        if final.is_file()
        else max(logs.glob("sdn/PongNoFrameskip-v4_1/checkpoint/*.zip"), key=lambda p: p.stat().st_mtime)
    )
    student = SDN.load(path, device="cpu", buffer_size=1)
    return student, int(student.num_timesteps)


def pong_env(seed: int):
    """Pong as the fixture teacher was trained: SB3 AtariWrapper, 4 stacked frames, channel-first."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

    gym.register_envs(ale_py)
    return VecTransposeImage(VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=seed), n_stack=4))


def measure(description, calibration: np.ndarray, held_out: np.ndarray, **options) -> dict:
    """Compile at the default widths on ``calibration``; agreement on ``held_out``, batched and one by one."""
    import warnings

    from sb3_snn import backends
    from sb3_snn_nc64c import check_fit, fit_report
    from sb3_snn_nc64c.spec import ChipSpec

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deployment = backends.load("nc64c").compile(description, calibration, **options)
    reference = backends.reference_simulate(description, held_out)
    batched = deployment.run(held_out)
    single = np.array([int(deployment.run(obs)) for obs in held_out])
    result = deployment.simulate(held_out)
    return {
        "cores": check_fit(description, ChipSpec()),
        "fit": fit_report(description, ChipSpec()).summary(),
        "agreement_batched": backends.agreement(batched, reference.actions),
        "agreement_one_at_a_time": backends.agreement(single, reference.actions),
        "one_at_a_time_equals_batched": bool(np.array_equal(single, batched)),
        "report_agreement": deployment.calibration.get("agreement"),
        "report_agreement_measured_on": deployment.calibration.get("agreement_measured_on"),
        "report_n_agreement_obs": deployment.calibration.get("n_agreement_obs"),
        "n_calibration_obs": deployment.calibration.get("n_calibration_obs"),
        "n_held_out": len(held_out),
        "membrane_saturations": int(sum(result.saturations.values())),
        "clipped_inputs": int(result.input_clipped),
        "warnings": [str(w.message) for w in caught],
    }


NETWORKS = ("cartpole", "sdn", "acrobot", "pong")


def record_rows(rows: list[dict]) -> list:
    """Benchmark records (suite ``nc64c``, experiment ``agreement``) of the measured networks."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.records import Row

    out = []
    for r in rows:
        setting = {
            "kind": r["kind"],
            "T": r.get("timesteps"),
            "seed": r.get("seed"),
            "training_seeds": 1,
            **({"note": r["note"]} if r.get("note") else {}),
        }
        for key in ("agreement_batched", "agreement_one_at_a_time"):
            out.append(
                Row(
                    suite="nc64c",
                    experiment="agreement",
                    method=r["network"],
                    env=r["env"],
                    setting={**setting, "mode": key[10:]},
                    seed=r.get("seed"),
                    metric="agreement",
                    value=float(r[key]),
                    stderr=None,
                    n=r["n_held_out"],
                    unit="fraction",
                    extra={
                        "membrane_saturations": r["membrane_saturations"],
                        "cores": r["cores"],
                        "teacher_score": r.get("teacher_score"),
                        "one_at_a_time_equals_batched": r["one_at_a_time_equals_batched"],
                    },
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed per width, 300 held-out states")
    parser.add_argument("--train-only", action="store_true", help="train (cache) the teachers and stop")
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument(
        "--networks",
        nargs="+",
        default=list(NETWORKS),
        choices=NETWORKS,
        help="which rows to measure (the JSON keeps the other rows of an earlier run)",
    )
    parser.add_argument("--no-sdn", action="store_true", help="skip the SDN CartPole student")
    parser.add_argument("--pong-states", type=int, default=500, help="Pong held-out frames (and calibration frames x 2)")
    args = parser.parse_args()
    if args.no_sdn:
        args.networks = [n for n in args.networks if n != "sdn"]
    th.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    archs = [(256, 256), (64, 64)]
    n_cal, n_test = 1000, 300 if args.quick else 1000
    start = time.perf_counter()
    models = (
        {(arch, seed): teacher(arch, seed) for arch in archs for seed in seeds}
        if {"cartpole", "sdn"} & set(args.networks)
        else {}
    )
    acrobot = acrobot_teacher(0) if "acrobot" in args.networks else None
    if args.train_only:
        print(f"teachers cached under {TEACHERS} ({time.perf_counter() - start:.0f} s)")
        return
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn import convert

    rows = []
    if "cartpole" in args.networks:
        for (arch, seed), model in models.items():
            t0 = time.perf_counter()
            policy = convert(
                model, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), timesteps=args.timesteps, n_calibration=1000
            )
            description = policy.spiking_description()
            calibration, held_out = states(model, n_cal, 1), states(model, n_test, 2)
            row = {
                "network": f"converted DQN {list(arch)} seed {seed}",
                "env": "CartPole-v1",
                "kind": "converted",
                "net_arch": list(arch),
                "seed": seed,
                "timesteps": args.timesteps,
                "teacher_score": teacher_score(model),
                **measure(description, calibration, held_out),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
            rows.append(row)
    if "sdn" in args.networks:
        import gymnasium as gym

        from sb3_snn import SDN

        t0 = time.perf_counter()
        model = models[((64, 64), 0)]
        student = SDN("SDNPolicy", gym.make("CartPole-v1"), teacher=model, seed=0, device="cpu", learning_starts=500)
        student.learn(5000)
        description = student.policy.spiking_description()
        calibration, held_out = states(model, n_cal, 1), states(model, n_test, 2)
        row = {
            "network": "SDN CartPole student (from [64, 64] seed 0, 5000 steps)",
            "env": "CartPole-v1",
            "kind": "sdn",
            "timesteps": description.timesteps,
            **measure(description, calibration, held_out),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
        rows.append(row)
    if acrobot is not None:
        t0 = time.perf_counter()
        policy = convert(
            acrobot, env=make_vec_env("Acrobot-v1", n_envs=1, seed=0), timesteps=args.timesteps, n_calibration=1000
        )
        description = policy.spiking_description()
        calibration = states(acrobot, n_cal, 1, "Acrobot-v1")
        held_out = states(acrobot, n_test, 2, "Acrobot-v1")
        row = {
            "network": "converted Acrobot DQN [256, 256] seed 0",
            "env": "Acrobot-v1",
            "kind": "converted",
            "net_arch": [256, 256],
            "seed": 0,
            "timesteps": args.timesteps,
            "teacher_score": teacher_score(acrobot, env_id="Acrobot-v1"),
            **measure(description, calibration, held_out),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
        rows.append(row)
    if "pong" in args.networks:
        from sb3_snn.common.observations import description_input
        from sb3_snn.sdn import load_teacher

        t0 = time.perf_counter()
        student, steps = pong_student()
        description = student.policy.spiking_description()
        to_input = description_input(description, student.policy)
        fixture = load_teacher(str(PONG_TEACHER), device="cpu")
        frames = states(fixture, 2 * args.pong_states + args.pong_states, 1, env=pong_env(1))
        calibration, held_out = to_input(frames[: 2 * args.pong_states]), to_input(frames[2 * args.pong_states :])
        row = {
            "network": f"SDN Pong student (zoo config, {steps} steps: brief)",
            "env": "PongNoFrameskip-v4",
            "kind": "sdn",
            "seed": 0,
            "timesteps": description.timesteps,
            "note": f"briefly distilled ({steps} of the config's 200 000 steps); calibration and held-out frames "
            "are consecutive frames of the same teacher episodes (epsilon 0.05, env seed 1)",
            **measure(description, calibration, held_out),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
        rows.append(row)
    previous = json.loads(RESULTS_JSON.read_text()).get("networks", []) if RESULTS_JSON.is_file() else []
    measured = {r["network"] for r in rows}
    networks = [r for r in previous if r["network"] not in measured] + rows
    record = {
        "benchmark": "nc64c_agreement",
        "command": "python benchmarks/bench_nc64c_agreement.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "spec": "nc64c defaults (ChipSpec())",
        "teacher_hyperparameters": {**ZOO_CARTPOLE, "total_timesteps": ZOO_STEPS, "source": "rl_zoo3 dqn.yml CartPole-v1"},
        "acrobot_hyperparameters": {
            **ZOO_ACROBOT,
            "net_arch": [256, 256],
            "total_timesteps": ZOO_ACROBOT_STEPS,
            "source": "rl_zoo3 dqn.yml Acrobot-v1",
        },
        "conversion": {"timesteps": args.timesteps, "n_calibration": 1000},
        "states": {
            "calibration": f"{n_cal} example states (default holdout: 80 % calibrate, 20 % give the "
            "report's figure), teacher epsilon 0.05, env seed 1",
            "held_out": f"{n_test} states, teacher epsilon 0.05, env seed 2",
            "pong": f"{2 * args.pong_states} calibration + {args.pong_states} held-out frames",
        },
        "min_agreement_batched": min(r["agreement_batched"] for r in networks),
        "min_agreement_one_at_a_time": min(r["agreement_one_at_a_time"] for r in networks),
        "networks": networks,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(write_result("nc64c_agreement", record, rows=False))
    sys.path.insert(0, str(ROOT))
    from benchmarks.records import append_rows

    print(append_rows("nc64c", record_rows(rows)))


if __name__ == "__main__":
    main()

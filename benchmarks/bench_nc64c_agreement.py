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
[64, 64] teacher is measured the same way. Writes
``benchmarks/results/nc64c_agreement.json`` (via ``benchmarks/common.write_result``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_result

TEACHERS = ROOT / "benchmarks" / "out" / "nc64c_teachers"
#: rl_zoo3 hyperparams/dqn.yml, CartPole-v1 (net_arch set per teacher)
ZOO_CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                    exploration_final_eps=0.04)
ZOO_STEPS = 50_000


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


def teacher_score(model, episodes: int = 10) -> float:
    """Mean return of the teacher's greedy policy over ``episodes`` CartPole-v1 episodes (seeds 100...)."""
    import gymnasium as gym

    env, total = gym.make("CartPole-v1"), 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=100 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def states(model, n: int, seed: int) -> np.ndarray:
    """``n`` CartPole-v1 states of the teacher playing epsilon = 0.05 (episodes seeded by ``seed``)."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn.conversion import collect_calibration_frames, extract_network

    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    return collect_calibration_frames(extract_network(model), env, n, 0.05, seed).astype(np.float64)


def measure(description, calibration: np.ndarray, held_out: np.ndarray, **options) -> dict:
    """Compile at the default widths on ``calibration``; agreement on ``held_out``, batched and one by one."""
    import warnings

    from sb3_snn import backends

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deployment = backends.load("nc64c").compile(description, calibration, **options)
    reference = backends.reference_simulate(description, held_out)
    batched = deployment.run(held_out)
    single = np.array([int(deployment.run(obs)) for obs in held_out])
    result = deployment.simulate(held_out)
    return {
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed per width, 300 held-out states")
    parser.add_argument("--train-only", action="store_true", help="train (cache) the teachers and stop")
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--no-sdn", action="store_true", help="skip the SDN student")
    args = parser.parse_args()
    th.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    archs = [(256, 256), (64, 64)]
    n_cal, n_test = 1000, 300 if args.quick else 1000
    start = time.perf_counter()
    models = {(arch, seed): teacher(arch, seed) for arch in archs for seed in seeds}
    if args.train_only:
        print(f"teachers cached under {TEACHERS} ({time.perf_counter() - start:.0f} s)")
        return
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_snn import convert

    rows = []
    for (arch, seed), model in models.items():
        t0 = time.perf_counter()
        policy = convert(model, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), timesteps=args.timesteps,
                         n_calibration=1000)
        description = policy.spiking_description()
        calibration, held_out = states(model, n_cal, 1), states(model, n_test, 2)
        row = {"network": f"converted DQN {list(arch)} seed {seed}", "kind": "converted", "net_arch": list(arch),
               "seed": seed, "timesteps": args.timesteps, "teacher_score": teacher_score(model),
               **measure(description, calibration, held_out), "seconds": round(time.perf_counter() - t0, 1)}
        print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
        rows.append(row)
    if not args.no_sdn:
        import gymnasium as gym

        from sb3_snn import SDN

        t0 = time.perf_counter()
        model = models[((64, 64), 0)]
        student = SDN("SDNPolicy", gym.make("CartPole-v1"), teacher=model, seed=0, device="cpu", learning_starts=500)
        student.learn(5000)
        description = student.policy.spiking_description()
        calibration, held_out = states(model, n_cal, 1), states(model, n_test, 2)
        row = {"network": "SDN CartPole student (from [64, 64] seed 0, 5000 steps)", "kind": "sdn",
               "timesteps": description.timesteps, **measure(description, calibration, held_out),
               "seconds": round(time.perf_counter() - t0, 1)}
        print({k: v for k, v in row.items() if k != "warnings"}, flush=True)
        rows.append(row)
    record = {
        "benchmark": "nc64c_agreement",
        "command": "python benchmarks/bench_nc64c_agreement.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "spec": "nc64c defaults (ChipSpec())",
        "teacher_hyperparameters": {**ZOO_CARTPOLE, "total_timesteps": ZOO_STEPS, "source": "rl_zoo3 dqn.yml CartPole-v1"},
        "conversion": {"timesteps": args.timesteps, "n_calibration": 1000},
        "states": {"calibration": f"{n_cal} example states (default holdout: 80 % calibrate, 20 % give the "
                                  "report's figure), teacher epsilon 0.05, env seed 1",
                   "held_out": f"{n_test} states, teacher epsilon 0.05, env seed 2"},
        "min_agreement_batched": min(r["agreement_batched"] for r in rows),
        "min_agreement_one_at_a_time": min(r["agreement_one_at_a_time"] for r in rows),
        "networks": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(write_result("nc64c_agreement", record))


if __name__ == "__main__":
    main()

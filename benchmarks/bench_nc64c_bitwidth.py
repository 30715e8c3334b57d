"""Sweep the NC64C model's weight bit width: where does integer/float action agreement break?

    .venv/bin/python benchmarks/bench_nc64c_bitwidth.py [--quick]

For each network, compile at each weight width (inputs at the default 12 bits, and inputs at the same
width as the weights), then compare the integer simulation's greedy actions with the float reference
on held-out observations (for the CartPole policies: states of other episodes than the calibration
ones). Networks: the three example shapes (random weights) and, when
``benchmarks/out/logs/dqn/CartPole-v1_1`` exists, a converted CartPole DQN (T=32) and an SDN student
distilled from it (5000 steps). The membrane is widened to 40 bits so that it does not confound the
sweep. Writes ``benchmarks/out/results/nc64c_bitwidth.json`` (via ``benchmarks/common.write_result``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sb3_snn import backends
from sb3_snn.backends import examples

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result

ROOT = Path(__file__).resolve().parents[1]
DQN_CARTPOLE = ROOT / "benchmarks" / "out" / "logs" / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip"


def networks(n_obs: int) -> dict[str, tuple]:
    """name -> (description, calibration obs, test obs)."""
    found = {}
    for name, description in [("converted_like (IF, subtract, robust, T=64)", examples.converted_like()),
                              ("sdn_like (LIF 0.5, zero, frames, membrane_mean, T=8)", examples.sdn_like()),
                              ("conv_like (conv IF, subtract, robust, T=16)", examples.conv_like())]:
        found[name] = (description, examples.example_observations(description, n_obs, 1),
                       examples.example_observations(description, n_obs, 2))
    if DQN_CARTPOLE.is_file():
        from stable_baselines3 import DQN
        from stable_baselines3.common.env_util import make_vec_env

        from sb3_snn.conversion import collect_calibration_frames, convert, extract_network

        model = DQN.load(DQN_CARTPOLE, device="cpu", buffer_size=1)
        env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
        policy = convert(model, env=env, timesteps=32, n_calibration=1000)
        obs = collect_calibration_frames(extract_network(model), env, 2 * n_obs, 0.05, 1).astype(np.float64)
        found["converted CartPole DQN (trained, T=32)"] = (policy.spiking_description(), obs[:n_obs], obs[n_obs:])
        import gymnasium as gym

        from sb3_snn import SDN

        student = SDN("SDNPolicy", gym.make("CartPole-v1"), teacher=model, seed=0, device="cpu", learning_starts=500)
        student.learn(5000)
        found["SDN CartPole student (LIF 0.2, T=8)"] = (student.policy.spiking_description(), obs[:n_obs], obs[n_obs:])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer observations and widths")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nc64c_bitwidth.json"))
    args = parser.parse_args()
    n_obs = 100 if args.quick else 300
    widths = [4, 8, 12, 16] if args.quick else [4, 6, 8, 10, 12, 14, 16]
    results = {}
    start = time.perf_counter()
    networks_cache = networks(n_obs)
    for name, (description, calibration, test) in networks_cache.items():
        reference = backends.reference_simulate(description, test).actions
        rows = []
        for bits in widths:
            row = {"weight_bits": bits}
            for label, input_bits in (("input_12", 12), ("input_same", bits)):
                deployment = backends.load("nc64c", weight_bits=bits, input_bits=max(input_bits, 2), membrane_bits=40).compile(
                    description, calibration)
                row[label] = backends.agreement(deployment.run(test), reference)
            rows.append(row)
            print(f"{name:55s} w={bits:2d}  agreement (12-bit input) {row['input_12']:.3f}  "
                  f"(same-width input) {row['input_same']:.3f}",
                  flush=True)
        reached = [r["weight_bits"] for r in rows if r["input_same"] >= 0.99]
        results[name] = {"rows": rows, "n_test_obs": len(test),
                         "min_bits_for_99pct_same_width": min(reached) if reached else None}
    default = {}
    for name, (description, calibration, test) in networks_cache.items():
        deployment = backends.load("nc64c").compile(description, calibration)
        default[name] = backends.agreement(deployment.run(test), backends.reference_simulate(description, test).actions)
    cartpole = {k: v for k, v in default.items() if "CartPole" in k}
    headline = ("agreement at the default widths (16-bit weights, 12-bit inputs): "
                + ", ".join(f"{k}: {v:.3f}" for k, v in (cartpole or default).items()))
    record = {
        "title": "NC64C model: integer vs float SNN greedy-action agreement by weight bit width",
        "headline": headline,
        "target": ">= 0.99 agreement for a converted CartPole policy and an SDN CartPole student at the default widths",
        "command": ".venv/bin/python benchmarks/bench_nc64c_bitwidth.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "rows": [{"network": name, **row} for name, result in results.items() for row in result["rows"]],
        "default_agreement": default,
        "networks": results,
        "membrane_bits": 40, "default_weight_bits": 16, "default_input_bits": 12,
        "metric": "fraction of equal greedy actions, integer model vs float SNN, held-out observations",
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(headline)
    print(f"wrote {write_result(Path(args.out).stem, record)}")

if __name__ == "__main__":
    main()

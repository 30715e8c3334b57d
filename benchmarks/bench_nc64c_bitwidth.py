"""Sweep the NC64C model's weight bit width: where does integer/float action agreement break?

    .venv/bin/python benchmarks/bench_nc64c_bitwidth.py [--quick]

For each network, compile at each weight width (inputs at the default 8 bits, and inputs at the same
width as the weights), then compare the integer simulation's greedy actions with the float reference
on held-out observations. Networks: the three example shapes (random weights) and, when
``benchmarks/out/logs/dqn/CartPole-v1_1`` exists, a converted CartPole DQN (T=32). The membrane is
widened to 40 bits so that it does not confound the sweep (the default 30 bits saturates-by-cap at
16+16 bits). Writes ``benchmarks/results/nc64c_bitwidth.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from sb3_snn import backends
from sb3_snn.backends import examples

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
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer observations and widths")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nc64c_bitwidth.json"))
    args = parser.parse_args()
    n_obs = 100 if args.quick else 300
    widths = [2, 4, 6, 8, 12, 16] if args.quick else [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16]
    results = {}
    start = time.perf_counter()
    for name, (description, calibration, test) in networks(n_obs).items():
        reference = backends.reference_simulate(description, test).actions
        rows = []
        for bits in widths:
            row = {"weight_bits": bits}
            for label, input_bits in (("input_8", 8), ("input_same", bits)):
                deployment = backends.load("nc64c", weight_bits=bits, input_bits=max(input_bits, 2), membrane_bits=40).compile(
                    description, calibration)
                row[label] = backends.agreement(deployment.run(test), reference)
            rows.append(row)
            print(f"{name:55s} w={bits:2d}  agreement (8-bit input) {row['input_8']:.3f}  (same-width input) {row['input_same']:.3f}",
                  flush=True)
        reached = [r["weight_bits"] for r in rows if r["input_same"] >= 0.99]
        results[name] = {"rows": rows, "n_test_obs": len(test), "min_bits_for_99pct_same_width": min(reached) if reached else None}
    document = {
        "benchmark": "nc64c weight bit-width sweep", "metric": "fraction of equal greedy actions, integer model vs float SNN",
        "membrane_bits": 40, "default_weight_bits": 8, "default_input_bits": 8, "networks": results,
        "seconds": round(time.perf_counter() - start, 1), "machine": platform.platform(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(document, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

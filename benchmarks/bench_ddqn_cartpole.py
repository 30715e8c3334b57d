"""DDQN on CartPole-v1: train with the runner, evaluate over 100 episodes, write the figure.

    python benchmarks/bench_ddqn_cartpole.py --seeds 0 1 2

Trains ``sb3-snn train --algo ddqn --env CartPole-v1 -conf sb3_snn/configs/zoo/ddqn.yml`` per seed into
``benchmarks/out/logs``, evaluates the final and the best model with ``sb3-snn evaluate`` (100
deterministic episodes) and writes ``benchmarks/out/results/ddqn_cartpole.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_result


def run(cmd: list[str]) -> None:
    """Run a command from the repository root, failing loudly."""
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()
    logs = ROOT / "benchmarks/out/logs"
    rows = []
    for seed in args.seeds:
        start = time.time()
        run([sys.executable, "-m", "sb3_snn", "train", "--algo", "ddqn", "--env", "CartPole-v1", "-conf",
             "sb3_snn/configs/zoo/ddqn.yml", "-f", str(logs), "--seed", str(seed), "--num-threads", "1",
             "--eval-freq", "5000", "--eval-episodes", "10", "-tb", str(ROOT / "benchmarks/out/tb")])
        train_seconds = time.time() - start
        exp_id = max(int(p.name.rsplit("_", 1)[1]) for p in (logs / "ddqn").glob("CartPole-v1_*"))
        for which, flag in (("last", []), ("best", ["--load-best"])):
            out = ROOT / f"benchmarks/out/ddqn_cartpole_seed{seed}_{which}.json"
            run([sys.executable, "-m", "sb3_snn", "evaluate", "--algo", "ddqn", "--env", "CartPole-v1", "-f", str(logs),
                 "--exp-id", str(exp_id), "--episodes", str(args.episodes), "--seed", "1000", "--json", str(out), *flag])
            result = json.loads(out.read_text())
            rows.append({"seed": seed, "model": which, "mean_reward": result["mean_reward"],
                         "std_reward": result["std_reward"], "episodes": args.episodes,
                         "train_seconds": round(train_seconds, 1)})
    last = [row for row in rows if row["model"] == "last"]
    headline = "; ".join(f"seed {r['seed']}: {r['mean_reward']:.1f} ± {r['std_reward']:.1f}" for r in last)
    record = {
        "benchmark": "ddqn_cartpole",
        "title": "Double DQN on CartPole-v1 (final model, 100 deterministic episodes)",
        "headline": headline + f" ({'meets' if all(r['mean_reward'] >= 475 for r in last) else 'MISSES'} >= 475)",
        "command": "python benchmarks/bench_ddqn_cartpole.py --seeds " + " ".join(map(str, args.seeds)),
        "machine": machine() + " (training: --num-threads 1)",
        "target": ">= 475 mean reward over 100 episodes",
        "rows": rows,
    }
    print(json.dumps(record, indent=2))
    print("wrote", write_result("ddqn_cartpole", record))


if __name__ == "__main__":
    main()

"""The README's main job, timed: ``sb3-snn pipeline`` from scratch (embedded settings, or a config).

    python benchmarks/bench_pipeline.py                                     # CartPole-v1, the README's main command
    python benchmarks/bench_pipeline.py --env PongNoFrameskip-v4 --config benchmarks/configs/pong_pipeline_cpu.yml

Runs the pipeline into a fresh ``benchmarks/out/pipeline[_<env>]`` and writes its table and wall time to
``benchmarks/out/results/pipeline_<env>.json`` (target for CartPole-v1: under 10 minutes on the 2-core CPU
machine; for Atari the record says which shortened settings it used).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--config", type=Path, default=None, help="pipeline YAML (default: the embedded one)")
    args = parser.parse_args()
    cartpole = args.env == "CartPole-v1" and args.config is None
    slug = "cartpole" if args.env == "CartPole-v1" else args.env.lower().replace("noframeskip-v4", "").replace("-", "_")
    out = ROOT / ("benchmarks/out/pipeline" if cartpole else f"benchmarks/out/pipeline_{slug}")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sb3_snn", "pipeline", "--env", args.env, "--out", str(out)]
    if args.config is not None:
        command += ["--config", str(args.config)]
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    seconds = time.time() - start
    summary = json.loads((out / "summary.json").read_text())
    settings = (yaml.safe_load(args.config.read_text()) or {}).get(args.env) if args.config else None
    record = {
        "benchmark": f"pipeline_{slug}",
        "title": f"The whole pipeline on {args.env}" + (" (README main command), from scratch" if cartpole else
                                                         f", from scratch with {args.config}"),
        "command": " ".join(["python benchmarks/bench_pipeline.py", *sys.argv[1:]]),
        "machine": machine(),
        "target": ("finishes under 10 minutes on the 2-core CPU machine and prints the table" if cartpole else
                   "runs end to end on Atari and prints the table (shortened settings on the CPU machine)"),
        "headline": f"{seconds / 60:.1f} minutes; " + "; ".join(f"{row['agent']} {row['score']}" for row in summary["rows"]),
        "rows": summary["rows"],
        "notes": [f"seed {summary['seed']}; scores over the pipeline's evaluation episodes; energy: NC64C model for "
                  "spiking agents (assumed costs, docs/hardware.md), fp32 MACs at 4.6 pJ for the ANN"],
    }
    if settings is not None:
        record["settings"] = settings
    if cartpole:
        record["minutes"] = round(seconds / 60, 2)
        record["target_met"] = seconds < 600
    print(record["headline"])
    write_result(f"pipeline_{slug}", record)


if __name__ == "__main__":
    main()

"""The README's main job, timed: ``sb3-snn pipeline`` on CartPole-v1 from scratch (embedded settings).

    python benchmarks/bench_pipeline.py

Runs the pipeline into a fresh ``benchmarks/out/pipeline`` and writes its table and wall time to
``benchmarks/results/pipeline_cartpole.json`` (target: under 10 minutes on the 2-core CPU machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_result  # noqa: E402


def main() -> None:
    out = ROOT / "benchmarks/out/pipeline"
    shutil.rmtree(out, ignore_errors=True)
    start = time.time()
    subprocess.run([sys.executable, "-m", "sb3_snn", "pipeline", "--env", "CartPole-v1", "--out", str(out)],
                   cwd=ROOT, check=True)
    seconds = time.time() - start
    summary = json.loads((out / "summary.json").read_text())
    record = {
        "benchmark": "pipeline_cartpole",
        "title": "The whole pipeline on CartPole-v1 (README main command), from scratch",
        "command": "python benchmarks/bench_pipeline.py",
        "machine": machine(),
        "target": "finishes under 10 minutes on the 2-core CPU machine and prints the table",
        "headline": f"{seconds / 60:.1f} minutes; " + "; ".join(f"{row['agent']} {row['score']}" for row in summary["rows"]),
        "rows": summary["rows"],
        "notes": [f"seed {summary['seed']}; scores over the pipeline's evaluation episodes (deterministic); "
                  "energy: NC64C model for spiking agents (assumed costs, docs/hardware.md), fp32 MACs at 4.6 pJ for the ANN"],
    }
    print(record["headline"])
    write_result("pipeline_cartpole", record)


if __name__ == "__main__":
    main()

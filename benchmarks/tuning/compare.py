"""Compare a tuning study's best configuration with the shipped zoo configuration, over several training seeds.

For each method (``cvtc``: ``sb3-snn train --algo ddqn -conf cvtc``; ``sdn``: ``--algo sdn -conf sdn`` with a
fixed teacher) the best trial of the study is turned into a zoo config with ``sb3-snn sweep --best-config``;
both configurations are trained with ``sb3-snn train`` on the same seeds and the same step budget, and the
final and the best (EvalCallback) models are scored over 30 episodes, episode ``i`` on environment seed
``1000 + i`` for every model (paired). Writes one JSON summary per method and prints the table.

    python benchmarks/tuning/compare.py OUT_DIR --method cvtc --study-name cvtc-cartpole
    python benchmarks/tuning/compare.py OUT_DIR --method sdn --study-name sdn-cartpole --teacher dqn.zip
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.records import Row, append_rows
from sb3_snn.common.evaluation import play_episodes
from sb3_snn.common.models import load_model

METHODS = {"cvtc": ("ddqn", "cvtc"), "sdn": ("sdn", "sdn")}
EVAL_SEED = 1000


def _train(algo: str, conf: str, seed: int, folder: Path, env: str, extra: list[str]) -> Path:
    """Train one run with ``sb3-snn train`` (skipped when its final model exists) and return its run folder."""
    run = folder / algo / f"{env}_1"
    if not (run / f"{env}.zip").exists():
        cmd = [
            "sb3-snn",
            "train",
            "--algo",
            algo,
            "--env",
            env,
            "-conf",
            conf,
            "--seed",
            str(seed),
            "-f",
            str(folder),
            "--eval-freq",
            "5000",
            "--eval-episodes",
            "10",
            *extra,
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run


def _score(path: Path, algo: str, env_id: str, episodes: int) -> list[float]:
    """Greedy returns of one saved model over ``episodes`` episodes with seeds ``EVAL_SEED + i``."""
    model = load_model(path, algo=algo)
    return play_episodes(model, gym.make(env_id), episodes, seed=EVAL_SEED).scores


def record(summary: dict) -> None:
    """Append the comparison to the ``study-tuning`` suite: one row per configuration, seed and checkpoint,
    and the paired tuned-minus-shipped difference per checkpoint."""
    rows = [
        Row(
            suite="study-tuning",
            experiment=f"{summary['method']}-tuned-vs-shipped",
            method=summary["method"],
            env=summary["env"],
            setting={"config": run["config"], "checkpoint": run["checkpoint"], "training_seeds": 1, "study": summary["study"]},
            seed=run["seed"],
            metric="return",
            value=run["mean"],
            stderr=run["stderr"],
            n=len(run["scores"]),
            unit="return",
            extra={"eval_seeds": summary["eval_seeds"]},
        )
        for run in summary["runs"]
    ]
    for which in ("final", "best"):
        diff = summary[which]["tuned_minus_shipped"]
        rows.append(
            Row(
                suite="study-tuning",
                experiment=f"{summary['method']}-tuned-vs-shipped",
                method=summary["method"],
                env=summary["env"],
                setting={
                    "config": "tuned-minus-shipped",
                    "checkpoint": which,
                    "training_seeds": len(summary["training_seeds"]),
                    "study": summary["study"],
                },
                seed=None,
                metric="paired_return_difference",
                value=diff["mean"],
                stderr=diff["stderr"],
                n=len(summary["training_seeds"]),
                unit="return",
                extra={"best_config": summary["best_config"]},
            )
        )
    append_rows("study-tuning", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--storage", default=None, help="default: OUT/tune.log")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--teacher", type=Path, default=None, help="SDN teacher zip")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--shipped-conf", default=None, help="zoo config to compare with (default: the shipped one)")
    args = parser.parse_args()
    algo, conf = METHODS[args.method]
    storage = args.storage or str(args.out / "tune.log")
    best_yml = args.out / f"best_{args.method}.yml"
    best = subprocess.run(
        [
            "sb3-snn",
            "sweep",
            "--best-config",
            "--storage",
            storage,
            "--study-name",
            args.study_name,
            "-conf",
            conf,
            "--env",
            args.env,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    best_yml.write_text(best)
    extra = ["--teacher", str(args.teacher.resolve())] if args.teacher else []
    rows = []
    shipped = str(Path(args.shipped_conf).resolve()) if args.shipped_conf else conf
    for label, config in (("shipped", shipped), ("tuned", str(best_yml.resolve()))):
        for seed in args.seeds:
            run = _train(algo, config, seed, args.out / "compare" / args.method / label / f"seed{seed}", args.env, extra)
            for which, name in (("final", f"{args.env}.zip"), ("best", "best_model.zip")):
                scores = _score(run / name, algo, args.env, args.episodes)
                rows.append(
                    {
                        "config": label,
                        "seed": seed,
                        "checkpoint": which,
                        "scores": scores,
                        "mean": float(np.mean(scores)),
                        "stderr": float(np.std(scores, ddof=1) / np.sqrt(len(scores))),
                    }
                )
                print(
                    f"{args.method} {label:7s} seed {seed} {which:5s}: {rows[-1]['mean']:.1f} ± {rows[-1]['stderr']:.1f}",
                    flush=True,
                )
    summary: dict[str, object] = {
        "method": args.method,
        "env": args.env,
        "study": args.study_name,
        "episodes": args.episodes,
        "eval_seeds": f"{EVAL_SEED}..{EVAL_SEED + args.episodes - 1}",
        "training_seeds": args.seeds,
        "best_config": best,
        "runs": rows,
    }
    for which in ("final", "best"):
        per = {
            label: [r["mean"] for r in rows if r["config"] == label and r["checkpoint"] == which]
            for label in ("shipped", "tuned")
        }
        diff = np.array(per["tuned"]) - np.array(per["shipped"])  # paired on training seed and episode seeds
        summary[which] = {label: {"mean_over_seeds": float(np.mean(v)), "per_seed": v} for label, v in per.items()}
        summary[which]["tuned_minus_shipped"] = {
            "mean": float(diff.mean()),
            "stderr": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
        }
        print(
            f"{which}: shipped {np.mean(per['shipped']):.1f}, tuned {np.mean(per['tuned']):.1f}, "
            f"paired difference {diff.mean():+.1f}"
        )
    (args.out / f"compare_{args.method}.json").write_text(json.dumps(summary, indent=2))
    record(summary)


if __name__ == "__main__":
    sys.exit(main())

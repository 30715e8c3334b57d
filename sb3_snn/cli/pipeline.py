"""``sb3-snn pipeline``: train a teacher, turn it into spiking agents three ways, evaluate, export.

    sb3-snn pipeline                                   # CartPole-v1, embedded settings, into results/
    sb3-snn pipeline --env PongNoFrameskip-v4 --teacher ../shared/fixtures/ppo_pong/ppo_pong.zip
    sb3-snn pipeline --config my_pipeline.yml --out results/mine

Rerunning with the same --out skips finished stages and resumes interrupted training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sb3_snn.pipeline import load_config, run_pipeline
from sb3_snn.pipeline.config import PipelineConfigError, validate_settings


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sb3-snn pipeline``."""
    parser = argparse.ArgumentParser(prog="sb3-snn pipeline", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--env", default="CartPole-v1", help="environment id (a section of the pipeline config)")
    parser.add_argument("--config", type=Path, default=None, help="pipeline YAML (default: the embedded one)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<env>)")
    parser.add_argument("--teacher", default=None, help="use this trained teacher zip instead of training one")
    parser.add_argument("--teacher-algo", default=None, help="algorithm of --teacher (dqn, ddqn, qrdqn, ppo, a2c)")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--progress", action="store_true", help="also show a progress bar inside each training")
    return parser


def main(argv: list[str]) -> int:
    """Run the pipeline and print its table; a config that cannot run is an error (exit 2) before any work."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_config(args.env, args.config)
        if args.teacher:
            settings["teacher"] = {**(settings.get("teacher") or {}), "path": args.teacher}
        if args.teacher_algo:
            settings["teacher"] = {**(settings.get("teacher") or {}), "algo": args.teacher_algo}
        if args.seed is not None:
            settings["seed"] = args.seed
        settings["progress"] = args.progress
        validate_settings(settings, f"{args.config or 'the embedded pipeline.yml'} [{args.env}]")
    except (PipelineConfigError, FileNotFoundError) as exc:
        parser.error(str(exc))
    run_pipeline(settings, args.out or Path("results") / args.env)
    return 0

"""``sb3-snn train``: ``rl_zoo3.train`` with the registered algorithms added.

Every ``rl_zoo3.train`` flag works and the output folders are rl_zoo3's
(``logs/<algo>/<Env>_<N>/``, TensorBoard under ``-tb DIR/<Env>/``). ``-conf`` takes a YAML file or the
name of a config shipped with sb3-snn (``-conf cvtc`` is ``sb3_snn/configs/zoo/cvtc.yml``); without
``-conf``, an algorithm rl_zoo3 has no hyperparameters for (``ddqn``, ``sdn``) uses its shipped config.

Every run also writes a checkpoint (model, replay buffer, episode records) into
``<experiment folder>/checkpoint/`` every ``--checkpoint-freq`` steps (default: a tenth of the run).
``--resume`` (with the run's ``--algo``, ``--env``, ``-f`` and hyperparameters; ``--exp-id N`` picks the
folder, default the latest) continues a killed run from that checkpoint in the same experiment folder:
same step count, replay buffer, exploration schedule, Monitor files and TensorBoard run, up to the
run's ``-n``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from sb3_snn.cli.main import positive_int
from sb3_snn.configs import shipped_configs, zoo_config
from sb3_snn.zoo.algos import default_config, install_algos
from sb3_snn.zoo.training import ResumableExperimentManager, ResumeError


def _own_parser() -> argparse.ArgumentParser:
    """The flags ``sb3-snn train`` adds to rl_zoo3's (read first, the rest goes to rl_zoo3)."""
    parser = argparse.ArgumentParser(prog="sb3-snn train", add_help=False, allow_abbrev=False,
                                     description="sb3-snn's own flags (all other flags are rl_zoo3.train's, below):")
    parser.add_argument("--resume", action="store_true",
                        help="continue the experiment folder's last checkpoint (same --algo, --env, -f) to -n steps")
    parser.add_argument("--exp-id", type=int, default=0, help="with --resume: the experiment number to continue (0: latest)")
    parser.add_argument("--checkpoint-freq", type=positive_int, default=None,
                        help="steps between checkpoints in <experiment>/checkpoint/ (default: a tenth of the run)")
    return parser


def _flag_value(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _move_teacher_to_hyperparams(argv: list[str]) -> list[str]:
    """``--teacher PATH`` (SDN) becomes the constructor hyperparameter ``teacher`` in ``-params``."""
    rest, teacher, i = [], None, 0
    while i < len(argv):
        if argv[i] == "--teacher" and i + 1 < len(argv):
            teacher, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--teacher="):
            teacher = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    if teacher is None:
        return rest
    entry = f"teacher:{teacher!r}"
    for flag in ("-params", "--hyperparams"):
        if flag in rest:  # argparse keeps only the last -params: extend the existing one
            rest.insert(rest.index(flag) + 1, entry)
            return rest
    return [*rest, "-params", entry]


def _resolve_conf(argv: list[str]) -> list[str]:
    """``-conf NAME`` (no such file, but a shipped config of that name) becomes the shipped file's path."""
    resolved = list(argv)
    for i, arg in enumerate(resolved):
        for flag in ("-conf", "--conf-file"):
            value = resolved[i + 1] if arg == flag and i + 1 < len(resolved) else None
            inline = arg.startswith(flag + "=")
            if inline:
                value = arg.split("=", 1)[1]
            if value is None or Path(value).is_file():
                continue
            shipped = zoo_config(Path(value).stem) if Path(value).suffix in ("", ".yml") and "/" not in value else None
            if shipped is None:
                names = ", ".join(Path(name).stem for name in shipped_configs() if name.startswith("zoo/"))
                raise SystemExit(f"sb3-snn train: -conf {value!r} is neither a file nor a shipped config ({names})")
            if inline:
                resolved[i] = f"{flag}={shipped}"
            else:
                resolved[i + 1] = str(shipped)
    return resolved


def main(argv: list[str]) -> int:
    """Run rl_zoo3's trainer on ``argv`` (the arguments after ``sb3-snn train``), checkpointed and resumable.

    ``--teacher PATH`` (for ``--algo sdn``) is passed to the algorithm as ``-params teacher:'PATH'``.
    """
    install_algos()
    import rl_zoo3.train

    own = _own_parser()
    if "-h" in argv or "--help" in argv:
        own.print_help()
        print()
    options, argv = own.parse_known_args(list(argv))
    if options.resume and _flag_value(argv, "-i", "--trained-agent"):
        own.error("--resume continues the run's own checkpoint; it cannot be combined with -i/--trained-agent")
    if options.exp_id and not options.resume:
        own.error("--exp-id is only used with --resume")
    argv = _resolve_conf(_move_teacher_to_hyperparams(argv))
    algo = _flag_value(argv, "--algo") or "ppo"
    if _flag_value(argv, "-conf", "--conf-file") is None:
        config = default_config(algo)
        if config is not None:
            argv += ["-conf", str(config)]
    manager = functools.partial(ResumableExperimentManager, checkpoint_freq=options.checkpoint_freq,
                                resume="required" if options.resume else "no", exp_id=options.exp_id)
    saved, saved_manager = sys.argv, rl_zoo3.train.ExperimentManager
    sys.argv = ["sb3-snn train", *argv]
    rl_zoo3.train.ExperimentManager = manager  # type: ignore[misc,assignment]  # rl_zoo3's train() builds its manager by this name
    try:
        rl_zoo3.train.train()
    except ResumeError as exc:  # --resume without a checkpoint to continue
        print(f"sb3-snn train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
        rl_zoo3.train.ExperimentManager = saved_manager  # type: ignore[misc]
    return 0

"""``sb3-snn COMMAND [ARGS]``: one entry point, one module per command.

Each command module exposes ``main(argv: list[str]) -> int``. A new command is one line in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("sb3_snn.cli.train", "train an agent with rl_zoo3 (every rl_zoo3.train flag; --resume continues a killed run)"),
    "enjoy": ("sb3_snn.cli.enjoy", "watch a trained agent of any registered algorithm, or --record a video of it"),
    "evaluate": ("sb3_snn.cli.evaluate", "evaluate a trained agent: mean ± std episode reward"),
    "pipeline": ("sb3_snn.cli.pipeline", "the whole pipeline: teacher -> SDN, conversion, CVTC -> evaluate -> export"),
    "list": ("sb3_snn.cli.listing", "list registered algorithms, policies and backends"),
    "convert": ("sb3_snn.cli.convert", "convert a trained DQN to an IF spiking policy; sweep T and readouts"),
    "sweep": ("sb3_snn.cli.sweep", "a grid of envs x methods x seeds run by any number of workers on one Optuna storage"),
    "export": ("sb3_snn.cli.export", "compile a spiking policy for a hardware backend, print its report, save it"),
}


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (``--episodes 0`` is a usage error, not a NaN result)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, found {value}")
    return value


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: sb3-snn COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "`sb3-snn COMMAND --help` describes a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command module; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"sb3-snn: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)

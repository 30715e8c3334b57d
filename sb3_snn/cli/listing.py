"""``sb3-snn list``: every registered algorithm, policy and backend, and who provides it.

A policy is shown with the algorithms it serves (``[serves: dqn, ddqn]``), or, when no algorithm trains it
(``served_algos = ()``), with what builds it (its ``built_by`` class attribute, e.g. ``[built by: sb3_snn.convert]``).
"""

from __future__ import annotations

import argparse

from sb3_snn import registry


def main(argv: list[str]) -> int:
    """Print the three plugin groups as tables."""
    argparse.ArgumentParser(prog="sb3-snn list", description=__doc__).parse_args(argv)
    for kind in registry.GROUPS:
        found = registry.plugins(kind)
        print(f"{kind} ({len(found)}):")
        for name, plugin in sorted(found.items()):
            extra = f"  {_policy_note(plugin)}" if kind == "policies" else ""
            print(f"  {name:<20} {plugin.distribution:<20} {plugin.value}{extra}")
    return 0


def _policy_note(plugin: registry.Plugin) -> str:
    """What a policy serves (``[serves: ...]``) or, if no algorithm, what builds it (``[built by: ...]``)."""
    if plugin.served_algos:
        return f"[serves: {', '.join(plugin.served_algos)}]"
    built_by = getattr(plugin.target, "built_by", None)
    return f"[built by: {built_by}]" if built_by else "[serves: -]"

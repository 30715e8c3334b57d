"""``sb3-snn list``: every registered algorithm, policy and backend, and who provides it."""

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
            extra = f"  [serves: {', '.join(plugin.served_algos) or '-'}]" if kind == "policies" else ""
            print(f"  {name:<20} {plugin.distribution:<20} {plugin.value}{extra}")
    return 0

"""Put the registered algorithms into rl_zoo3's tables (the way the zoo documents for SBX)."""

from __future__ import annotations

from pathlib import Path

import sb3_snn  # noqa: F401  (registers policy aliases)
from sb3_snn import registry

#: Where the project's own zoo configs live (a source checkout or an editable install).
ZOO_CONFIGS = Path(__file__).resolve().parents[2] / "zoo_configs"


def install_algos() -> dict[str, type]:
    """Add every registered algorithm to ``rl_zoo3.utils.ALGOS`` and give it the tuning sampler of
    the stock algorithm it derives from (DDQN tunes like DQN). Returns the ALGOS table."""
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.utils import ALGOS

    stock = dict(ALGOS)
    for name, plugin in registry.plugins("algos").items():
        ALGOS.setdefault(name, plugin.target)
        for base_name, base in stock.items():
            if issubclass(plugin.target, base) and base_name in hyperparams_opt.HYPERPARAMS_SAMPLER:
                hyperparams_opt.HYPERPARAMS_SAMPLER.setdefault(name, hyperparams_opt.HYPERPARAMS_SAMPLER[base_name])
                if base_name in hyperparams_opt.HYPERPARAMS_CONVERTER:
                    converter = hyperparams_opt.HYPERPARAMS_CONVERTER[base_name]
                    hyperparams_opt.HYPERPARAMS_CONVERTER.setdefault(name, converter)
                break
    return ALGOS


def default_config(algo: str) -> Path | None:
    """The zoo config used when ``-conf`` is not given and rl_zoo3 ships none for ``algo``:
    ``./zoo_configs/<algo>.yml``, else the one beside the sb3-snn sources."""
    import rl_zoo3

    if (Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").is_file():
        return None
    for folder in (Path.cwd() / "zoo_configs", ZOO_CONFIGS):
        if (folder / f"{algo}.yml").is_file():
            return folder / f"{algo}.yml"
    return None

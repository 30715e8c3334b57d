"""Put the registered algorithms into rl_zoo3's tables (the way the zoo documents for SBX)."""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

import sb3_snn  # noqa: F401  (registers policy aliases)
from sb3_snn import registry
from sb3_snn.configs import zoo_config


def install_algos() -> dict[str, type[BaseAlgorithm]]:
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
    """The zoo config used when ``-conf`` is not given and rl_zoo3 ships none for ``algo``: the one
    shipped with sb3-snn (``sb3_snn/configs/zoo/<algo>.yml``), else ``None`` (rl_zoo3's own is used).

    :param algo: the algorithm id given to ``--algo``
    """
    import rl_zoo3

    if (Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").is_file():
        return None
    return zoo_config(algo)

"""Put the registered algorithms into rl_zoo3's tables (the way the zoo documents for SBX)."""

from __future__ import annotations

import warnings
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

import sb3_snn  # noqa: F401  (registers policy aliases)
from sb3_snn import registry
from sb3_snn.configs import zoo_config


_WARNED: set[str] = set()


def install_algos() -> dict[str, type[BaseAlgorithm]]:
    """Add every registered algorithm to ``rl_zoo3.utils.ALGOS`` and install the tuning samplers
    (:func:`sb3_snn.zoo.samplers.install_samplers`: each algorithm's and policy's
    ``hyperparameter_sampler``, else the stock algorithm's it derives from). Returns the ALGOS table."""
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.utils import ALGOS

    from sb3_snn.zoo.samplers import install_samplers

    stock = dict(ALGOS)
    for name, plugin in registry.plugins("algos").items():  # classes only: the registry skips anything else
        if name in stock and stock[name] is not plugin.target:
            if name not in _WARNED:  # the zoo's own algorithm keeps its id
                _WARNED.add(name)
                warnings.warn(f"sb3-snn: algo {name!r} from distribution {plugin.distribution!r} has the id of "
                              f"rl_zoo3's {stock[name].__name__}; --algo {name} stays rl_zoo3's",
                              registry.PluginLoadWarning, stacklevel=2)
            continue
        ALGOS.setdefault(name, plugin.target)
        for base_name, base in stock.items():
            if issubclass(plugin.target, base) and base_name in hyperparams_opt.HYPERPARAMS_CONVERTER:
                # rl_zoo3's --trial-id path for trials sampled by the stock sampler
                hyperparams_opt.HYPERPARAMS_CONVERTER.setdefault(name, hyperparams_opt.HYPERPARAMS_CONVERTER[base_name])
                break
    install_samplers(ALGOS)
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

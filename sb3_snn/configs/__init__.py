"""Configuration files shipped inside the package: rl_zoo3 hyperparameters (``zoo/<algo>.yml``), the
conversion settings (``conversion.yml``) and the pipeline (``pipeline.yml``).

They are package data, read through :mod:`importlib.resources`, so an installed wheel finds them
wherever it is installed. To change one, copy it and pass the copy (``-conf``, ``--config``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def config_file(name: str) -> Path:
    """The shipped file ``name`` (e.g. ``"zoo/dqn.yml"``, ``"pipeline.yml"``) as a path on disk.

    :param name: path relative to the ``sb3_snn/configs`` package
    :raises FileNotFoundError: no such file ships with the package (the message lists those that do)
    """
    path = Path(str(resources.files(__name__).joinpath(name)))
    if not path.is_file():
        shipped = ", ".join(shipped_configs()) or "(none)"
        raise FileNotFoundError(f"no shipped config {name!r}; shipped: {shipped}")
    return path


def zoo_config(algo: str) -> Path | None:
    """The shipped rl_zoo3 hyperparameter file for ``algo`` (``zoo/<algo>.yml``), ``None`` if there is none.

    :param algo: an algorithm id (``dqn``, ``ddqn``, ``sdn``, ``ppo``) or ``cvtc`` (DDQN with a CVTC policy)
    """
    path = Path(str(resources.files(__name__).joinpath("zoo", f"{algo}.yml")))
    return path if path.is_file() else None


def shipped_configs() -> list[str]:
    """Every shipped config file, relative to the package (``zoo/dqn.yml``, ``pipeline.yml``, ...)."""
    root = Path(str(resources.files(__name__)))
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yml"))

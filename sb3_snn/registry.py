"""Plugin discovery on Python entry points.

Three entry-point groups carry everything sb3-snn can use, its own pieces included:

- ``sb3_snn.algos``: name -> algorithm class (an SB3 ``BaseAlgorithm`` subclass);
- ``sb3_snn.policies``: name -> policy class; the name becomes a ``policy_aliases`` entry of every
  algorithm the policy serves (``served_algos`` on the class, else inferred from its base class);
- ``sb3_snn.backends``: name -> hardware backend class (see :mod:`sb3_snn.backends`).

A plugin that fails to import, or is not the right kind of object, is reported by name and distribution
in a :class:`PluginLoadWarning`; the rest load. A third-party plugin never replaces a built-in name:
``"distribution:name"`` (``backends.load("my-dist:nir")``) selects it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any

GROUPS = {"algos": "sb3_snn.algos", "policies": "sb3_snn.policies", "backends": "sb3_snn.backends"}
#: One item of each group, for messages ("unknown policy 'X'", not "unknown policie 'X'").
SINGULAR = {"algos": "algo", "policies": "policy", "backends": "backend"}


class PluginLoadWarning(UserWarning):
    """A registered plugin could not be imported or is not the right kind of object (skipped), or two
    distributions register one name; the others still load."""


class UnknownPluginError(KeyError):
    """A name that no installed distribution registers in a group."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        listed = ", ".join(sorted(available)) or "(none)"
        super().__init__(f"unknown {SINGULAR.get(kind, kind)} {name!r}; registered {kind}: {listed}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass
class Plugin:
    """One loaded entry point.

    :param kind: ``"algos"``, ``"policies"`` or ``"backends"``
    :param name: the registered name (an algorithm id, a policy alias, a backend name)
    :param target: the loaded object
    :param distribution: the distribution that declares the entry point
    :param value: the entry point's ``module:attribute`` string
    :param served_algos: for policies, the algorithm ids whose ``policy_aliases`` get this name
    """

    kind: str
    name: str
    target: Any
    distribution: str
    value: str
    served_algos: tuple[str, ...] = field(default_factory=tuple)


def _distribution_name(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


#: The distribution whose plugins are built in: on a name clash, its plugin keeps the plain name.
BUILTIN_DISTRIBUTION = "sb3-snn"
#: Plugins of every distribution by ``"distribution:name"``, filled by :func:`_load_group`.
_QUALIFIED: dict[str, dict[str, Plugin]] = {}


def _normalised(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def _wrong_kind(kind: str, target: Any) -> str | None:
    """Why ``target`` cannot be a plugin of ``kind`` (``None``: it can)."""
    if not isinstance(target, type):
        return f"not a class but {type(target).__name__} {target!r}"
    if kind == "algos":
        from stable_baselines3.common.base_class import BaseAlgorithm

        return None if issubclass(target, BaseAlgorithm) else f"{target.__name__}, not a BaseAlgorithm subclass"
    if kind == "policies":
        from stable_baselines3.common.policies import BasePolicy

        return None if issubclass(target, BasePolicy) else f"{target.__name__}, not a BasePolicy subclass"
    return None


def _warn(message: str) -> None:
    warnings.warn(f"sb3-snn: {message}", PluginLoadWarning, stacklevel=3)


@cache
def _load_group(kind: str) -> dict[str, Plugin]:
    """The group's plugins by plain name; every one also by ``"distribution:name"`` in :data:`_QUALIFIED`.

    A plugin that fails to import, or is not the right kind of object (an algorithm that is not a
    ``BaseAlgorithm`` subclass, a policy that is not a ``BasePolicy`` subclass, a backend that is not a
    class), is skipped with a :class:`PluginLoadWarning`. When two distributions register one name, the
    built-in one (:data:`BUILTIN_DISTRIBUTION`) keeps it, else the first found; the clash is warned and
    ``"distribution:name"`` selects the other.
    """
    loaded: dict[str, Plugin] = {}
    qualified: dict[str, Plugin] = {}
    singular = SINGULAR.get(kind, kind)
    for entry_point in metadata.entry_points(group=GROUPS[kind]):
        dist = _distribution_name(entry_point)
        where = f"{singular} plugin {entry_point.name!r} from distribution {dist!r} ({entry_point.value})"
        try:
            target = entry_point.load()
        except Exception as exc:  # a broken plugin must not break the host
            _warn(f"{where} failed to load: {type(exc).__name__}: {exc}")
            continue
        problem = _wrong_kind(kind, target)
        if problem is not None:
            _warn(f"{where} skipped: it is {problem}")
            continue
        plugin = Plugin(kind, entry_point.name, target, dist, entry_point.value)
        qualified[f"{dist}:{entry_point.name}"] = plugin
        other = loaded.get(entry_point.name)
        if other is None:
            loaded[entry_point.name] = plugin
            continue
        if other.value == entry_point.value:  # the same distribution seen twice (e.g. an editable install)
            continue
        builtin = _normalised(dist) == BUILTIN_DISTRIBUTION
        keep, shadowed = (plugin, other) if builtin else (other, plugin)
        loaded[entry_point.name] = keep
        _warn(f"{singular} {entry_point.name!r} is registered by {keep.distribution!r} and {shadowed.distribution!r}; "
              f"{entry_point.name!r} is {keep.distribution}'s, '{shadowed.distribution}:{entry_point.name}' selects the other")
    if kind == "policies":
        for plugin in qualified.values():
            plugin.served_algos = served_algos(plugin.target)
    _QUALIFIED[kind] = qualified
    return loaded


def refresh() -> None:
    """Forget what was discovered, so that distributions installed since are seen."""
    _load_group.cache_clear()
    _QUALIFIED.clear()
    sb3_algorithms.cache_clear()


def plugins(kind: str) -> dict[str, Plugin]:
    """Every loaded plugin of one group, by name.

    :param kind: ``"algos"``, ``"policies"`` or ``"backends"``
    """
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin group {kind!r}; groups: {', '.join(GROUPS)}")
    return dict(_load_group(kind))


def _get(kind: str, name: str) -> Any:
    found = plugins(kind)
    if name in found:
        return found[name].target
    qualified = _QUALIFIED.get(kind, {})
    if name in qualified:  # "distribution:name", e.g. a plugin that a built-in of the same name shadows
        return qualified[name].target
    raise UnknownPluginError(kind, name, list(found))


def get_algo(name: str) -> Any:
    """The algorithm class registered as ``name`` (e.g. ``"ddqn"``)."""
    return _get("algos", name)


def get_policy(name: str) -> Any:
    """The policy class registered as ``name`` (e.g. ``"CVTCPolicy"``)."""
    return _get("policies", name)


def get_backend(name: str) -> Any:
    """The backend class registered as ``name`` (e.g. ``"nc64c"``, or ``"my-dist:nir"`` for a shadowed one)."""
    return _get("backends", name)


@cache
def sb3_algorithms() -> dict[str, Any]:
    """Every algorithm a policy alias can be added to: SB3's, sb3-contrib's and registered ones."""
    import sb3_contrib
    import stable_baselines3 as sb3

    table: dict[str, Any] = {
        "a2c": sb3.A2C, "ddpg": sb3.DDPG, "dqn": sb3.DQN, "ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3,
        "qrdqn": sb3_contrib.QRDQN, "tqc": sb3_contrib.TQC, "trpo": sb3_contrib.TRPO,
        "ppo_lstm": sb3_contrib.RecurrentPPO,
    }
    for name, plugin in _load_group("algos").items():
        table.setdefault(name, plugin.target)
    return table


def served_algos(policy_class: type) -> tuple[str, ...]:
    """The algorithm ids a policy class can be used with.

    An explicit ``served_algos`` class attribute wins; otherwise every algorithm whose stock policy
    (``policy_aliases["MlpPolicy"]``) is a base class of ``policy_class`` is served.
    """
    explicit = getattr(policy_class, "served_algos", None)
    if explicit is not None:
        return tuple(explicit)
    served = []
    for algo_name, algo in sb3_algorithms().items():
        base = getattr(algo, "policy_aliases", {}).get("MlpPolicy")
        if isinstance(policy_class, type) and base is not None and issubclass(policy_class, base):
            served.append(algo_name)
    return tuple(served)


def register_policy_aliases() -> None:
    """Add every registered policy name to the ``policy_aliases`` of the algorithms it serves.

    ``policy_aliases`` is a class-level dict that SB3 subclasses share with their parent unless they
    define their own, so each algorithm gets its own copy before it is extended.
    """
    algorithms = sb3_algorithms()
    for plugin in _load_group("policies").values():
        for algo_name in plugin.served_algos:
            algo = algorithms.get(algo_name)
            if algo is None:
                continue
            if "policy_aliases" not in vars(algo):
                algo.policy_aliases = dict(algo.policy_aliases)
            algo.policy_aliases[plugin.name] = plugin.target

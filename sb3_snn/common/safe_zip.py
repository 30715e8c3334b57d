"""Reading Stable-Baselines3 model zips without running code from them.

An SB3 zip holds a ``data`` JSON document and ``.pth`` weight files. SB3 reads the weights with
``torch.load(..., weights_only=True)`` (no code runs), but every entry of ``data`` that was not JSON when
saved is a cloudpickle payload (``{":type:": ..., ":serialized:": base64}``) that ``json_to_data``
unpickles, and unpickling runs whatever the file's author put there. This module never unpickles: it
reads the readable keys SB3 writes beside each payload and rebuilds the entry from them, then hands the
rebuilt entries to SB3's own ``load`` as ``custom_objects`` (which ``json_to_data`` uses *instead of*
unpickling). Every ``:serialized:`` entry gets a replacement or the load is refused.

How each entry is rebuilt:

- ``observation_space`` / ``action_space``: ``Box`` (``dtype``, ``_shape``, ``low``, ``high``), ``Discrete``
  (``n``, ``start``), ``MultiDiscrete`` (``nvec``), ``MultiBinary`` (``n``); a bound that numpy printed
  truncated (``...``, arrays over 1000 values) is taken from the environment given when its shape and dtype
  agree, else as uniform when every printed value is the same; ``Dict`` / ``Tuple`` spaces come from the
  environment given;
- ``policy_class``: ``__module__`` plus the class name read from its methods (``<function DQNPolicy.forward
  at ...>``), resolved only among the policy classes of SB3, sb3-contrib, rl_zoo3's algorithms and the
  registered ``sb3_snn.policies`` (:func:`allowed_policy_classes`);
- ``replay_buffer_class`` / ``rollout_buffer_class``: the same way, among buffer classes of those packages;
- schedules (``lr_schedule``, ``exploration_schedule``, ``clip_range``, ...): SB3's ``FloatSchedule`` /
  ``LinearSchedule`` / ``ConstantSchedule`` and rl_zoo3's linear schedule from their readable fields; any
  other function becomes a constant (the saved ``learning_rate`` for the learning rate, else 0), with a
  warning naming it;
- ``policy_kwargs``: its plain values as they are, ``<class 'torch.nn...'>`` values resolved among
  ``torch.nn`` modules, ``torch.optim`` optimizers and the modules of the allowed packages;
- ``train_freq``: the algorithm's default (a ``TrainFreq`` tuple has no readable fields);
- ``action_noise`` and training state (``_last_obs``, episode-info buffers, :data:`RUNTIME_STATE`): ``None``
  (acting does not use them; ``learn`` starts them afresh, a training run passes its own noise).

Anything else is refused with :class:`UnsafeEntryError` naming the entry. ``trusted=True`` (Python) or
``--trust-pickle`` (CLI) uses SB3's loader unchanged, for files one wrote oneself.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

SelfAlgorithm = TypeVar("SelfAlgorithm", bound=BaseAlgorithm)

SERIALIZED = ":serialized:"
TYPE = ":type:"

#: Top-level packages whose classes a zip may name (policy, buffer, activation, optimizer, features extractor);
#: the packages of registered ``sb3_snn.algos`` / ``sb3_snn.policies`` plugins are added to these.
ALLOWED_PACKAGES = ("stable_baselines3", "sb3_contrib", "sb3_snn", "rl_zoo3", "torch")

#: Entries that are schedules (functions of the remaining progress) in SB3 and sb3-contrib algorithms.
SCHEDULE_KEYS = ("lr_schedule", "learning_rate", "exploration_schedule", "clip_range", "clip_range_vf")

#: Entries that are training state or exploration noise, not needed to act and rebuilt by ``learn`` when
#: ``None`` (the last observation, episode statistics; a training run passes its own action noise).
RUNTIME_STATE = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer",
                 "action_noise")

TRUST_HINT = "if you wrote this file yourself or trust its author, load it with trusted=True (CLI: --trust-pickle)"

_FUNCTION = re.compile(r"<function ([A-Za-z_][\w.]*)\.[A-Za-z_]\w* at 0x[0-9a-fA-F]+>")
_CLASS_REPR = re.compile(r"^<class '([A-Za-z_][\w.]*)'>$")
_CALL_REPR = re.compile(r"^([A-Za-z_]\w*)\((.*)\)$")


class UnsafeEntryError(ValueError):
    """An entry of a model zip's ``data`` that cannot be rebuilt without running pickled code."""


@dataclass
class ModelZip:
    """A model zip read into memory (so the file is read once) with its ``data`` JSON as written.

    :param path: the file (for messages)
    :param raw: the zip's bytes
    :param data: the ``data`` document, ``:serialized:`` entries still encoded
    """

    path: Path
    raw: bytes
    data: dict[str, Any]

    def serialized_keys(self) -> list[str]:
        """The entries SB3 would unpickle."""
        return [key for key, value in self.data.items() if isinstance(value, dict) and SERIALIZED in value]


def resolve_model_path(path: str | Path) -> Path:
    """``path`` as given (relative to the working directory), or with ``.zip`` appended (as SB3 saves).

    :param path: a model zip
    :raises FileNotFoundError: neither exists (the message names the working directory)
    """
    candidate = Path(path).expanduser()
    for option in (candidate, candidate.with_suffix(".zip")):
        if option.is_file():
            return option
    raise FileNotFoundError(f"model {str(path)!r} not found (relative paths are read from {Path.cwd()})")


def read_model_zip(path: str | Path | io.BufferedIOBase) -> ModelZip:
    """Read an SB3 model zip and its ``data`` JSON (nothing unpickled).

    :param path: the zip, with or without ``.zip``, or an open binary file
    :raises FileNotFoundError: no such file
    :raises ValueError: not a zip, no ``data`` entry, or ``data`` is not a JSON object (the message names the file)
    """
    if isinstance(path, io.BufferedIOBase):
        resolved, raw = Path(str(getattr(path, "name", "<file object>"))), path.read()
    else:
        resolved = resolve_model_path(path)
        raw = resolved.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            if "data" not in archive.namelist():
                raise ValueError(f"{resolved} is not a Stable-Baselines3 model zip (it has no 'data' entry; "
                                 f"entries: {', '.join(archive.namelist()[:8]) or 'none'})")
            text = archive.read("data").decode("utf-8")
    except zipfile.BadZipFile as error:
        raise ValueError(f"{resolved} is not a Stable-Baselines3 model (not a zip file)") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{resolved}: its 'data' entry is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{resolved}: its 'data' entry is a JSON {type(data).__name__}, expected an object")
    return ModelZip(resolved, raw, data)


def algorithm_table() -> dict[str, type[BaseAlgorithm]]:
    """Every algorithm id a saved model may name: rl_zoo3's table (SB3 and sb3-contrib) and the
    algorithms registered in the ``sb3_snn.algos`` entry-point group (``ddqn``, ``sdn``, ...)."""
    from rl_zoo3.utils import ALGOS

    from sb3_snn import registry

    return {**ALGOS, **{name: plugin.target for name, plugin in registry.plugins("algos").items()}}


def _allowed_packages() -> tuple[str, ...]:
    from sb3_snn import registry

    extra = {plugin.target.__module__.split(".")[0]
             for kind in ("algos", "policies") for plugin in registry.plugins(kind).values()}
    return tuple(sorted(set(ALLOWED_PACKAGES) | extra))


def allowed_policy_classes() -> dict[str, type]:
    """The policy classes a zip may name, by ``module.QualifiedName``: those of every algorithm in
    :func:`algorithm_table` (its ``policy_aliases``, with their policy base classes) and every registered
    ``sb3_snn.policies`` plugin."""
    from sb3_snn import registry

    registry.register_policy_aliases()
    found: set[type] = {plugin.target for plugin in registry.plugins("policies").values() if isinstance(plugin.target, type)}
    for algo in algorithm_table().values():
        found.update(value for value in getattr(algo, "policy_aliases", {}).values() if isinstance(value, type))
    classes: dict[str, type] = {}
    for cls in found:
        for base in cls.__mro__:
            if isinstance(base, type) and issubclass(base, BasePolicy) and base is not BasePolicy:
                classes[f"{base.__module__}.{base.__qualname__}"] = base
    return classes


def _class_name(entry: dict[str, Any]) -> str | None:
    """The qualified name of a pickled class, read from the ``<function Name.method at 0x..>`` strings SB3
    writes for its methods (the most frequent prefix)."""
    counts: dict[str, int] = {}
    for value in entry.values():
        if isinstance(value, str):
            for match in _FUNCTION.finditer(value):
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None


def _import_class(module: str, name: str, base: type | tuple[type, ...], what: str, source: Path) -> type:
    """``module.name`` if ``module`` belongs to an allowed package and the class derives from ``base``."""
    if module.split(".")[0] not in _allowed_packages():
        raise UnsafeEntryError(
            f"{source}: {what} names {module}.{name}, outside the packages a file may name "
            f"({', '.join(_allowed_packages())}); {TRUST_HINT}"
        )
    try:
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise UnsafeEntryError(f"{source}: {what} names {module}.{name}, which does not exist here ({error})") from error
    if not (isinstance(target, type) and issubclass(target, base)):
        expected = " or ".join(b.__name__ for b in (base if isinstance(base, tuple) else (base,)))
        raise UnsafeEntryError(f"{source}: {what} names {module}.{name}, which is not a {expected} class")
    return target


def rebuild_policy_class(entry: Any, source: Path, aliases: dict[str, Any] | None = None) -> type:
    """The policy class a zip's ``policy_class`` entry names, from :func:`allowed_policy_classes` only.

    :param entry: the ``policy_class`` value of ``data`` (a ``:serialized:`` dict, or an alias string)
    :param source: the file (for messages)
    :param aliases: the loading algorithm's ``policy_aliases`` (a plain string entry is looked up there)
    :raises UnsafeEntryError: the class cannot be told, or is not an allowed policy class
    """
    allowed = allowed_policy_classes()
    if isinstance(entry, str) and aliases and isinstance(aliases.get(entry), type):
        return aliases[entry]
    if not isinstance(entry, dict) or not isinstance(entry.get("__module__"), str):
        raise UnsafeEntryError(f"{source}: entry 'policy_class' is {str(entry)[:80]!r}, not a saved policy class")
    module = entry["__module__"]
    name = _class_name(entry)
    if name is None:  # a class without methods of its own: match the docstring among the allowed classes
        matches = [cls for cls in allowed.values()
                   if cls.__module__ == module and cls.__doc__ is not None and cls.__doc__ == entry.get("__doc__")]
        if len(matches) == 1:
            return matches[0]
        raise UnsafeEntryError(
            f"{source}: entry 'policy_class' (module {module}) does not say which class it is; {TRUST_HINT}"
        )
    qualified = f"{module}.{name}"
    if qualified not in allowed:
        raise UnsafeEntryError(
            f"{source}: entry 'policy_class' names {qualified}, which is not a policy class of SB3, sb3-contrib or a "
            f"registered sb3_snn.policies plugin; {TRUST_HINT}"
        )
    return allowed[qualified]


def _parse_array(text: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """An array numpy printed with ``str``; ``None`` when numpy truncated it (``...``)."""
    if isinstance(text, (int, float)):
        return np.full(shape, text, dtype=dtype)
    if not isinstance(text, str):
        raise ValueError(f"expected an array printed as text, got {type(text).__name__}")
    if "..." in text:
        return None
    tokens = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    values = np.array([float(token) for token in tokens], dtype=np.float64)
    if values.size == 1 and int(np.prod(shape)) != 1:
        return np.full(shape, values[0]).astype(dtype)
    return values.reshape(shape).astype(dtype)


def _uniform_if_truncated(text: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    tokens = {token for token in text.replace("[", " ").replace("]", " ").split() if token != "..."}
    return np.full(shape, float(tokens.pop()), dtype=dtype) if len(tokens) == 1 else None


def rebuild_space(name: str, entry: dict[str, Any], source: Path, env_space: spaces.Space | None = None) -> spaces.Space:
    """A gymnasium space from the readable keys SB3 writes beside its pickle (see the module docstring).

    :param name: the entry (``observation_space``, ``action_space``), for messages
    :param entry: the entry's dict
    :param source: the file, for messages
    :param env_space: the same space of the environment the model is loaded with, if any
    :raises UnsafeEntryError: the space cannot be rebuilt (the message names the entry and what to give)
    """
    kind = str(entry.get(TYPE, ""))
    try:
        if kind.endswith(".Discrete'>"):
            return spaces.Discrete(int(entry["n"]), start=int(entry.get("start", 0)))
        if kind.endswith(".MultiBinary'>"):
            n = entry["n"]
            return spaces.MultiBinary(json.loads(n) if isinstance(n, str) else n)
        if kind.endswith(".MultiDiscrete'>"):
            dtype = np.dtype(entry.get("dtype", "int64"))
            shape = tuple(entry["_shape"])
            nvec = _parse_array(entry["nvec"], shape, dtype)
            if nvec is not None:
                return spaces.MultiDiscrete(nvec, dtype=dtype)
        if kind.endswith(".Box'>"):
            dtype, shape = np.dtype(entry["dtype"]), tuple(int(n) for n in entry["_shape"])
            bounds = []
            for key in ("low", "high"):
                array = _parse_array(entry[key], shape, dtype)
                if array is None and isinstance(entry.get(f"{key}_repr"), str) and "[" not in entry[f"{key}_repr"]:
                    array = np.full(shape, float(entry[f"{key}_repr"]), dtype=dtype)
                if array is None and isinstance(env_space, spaces.Box) and env_space.shape == shape \
                        and env_space.dtype == dtype:
                    array = getattr(env_space, key)
                if array is None:
                    array = _uniform_if_truncated(entry[key], shape, dtype)
                if array is None:
                    raise UnsafeEntryError(f"{source}: entry {name!r}: its {key} bound was saved truncated; "
                                           "give the environment (env=) to load it")
                bounds.append(array)
            return spaces.Box(low=bounds[0], high=bounds[1], shape=shape, dtype=dtype)  # type: ignore[arg-type]
    except UnsafeEntryError:
        raise
    except (KeyError, ValueError, TypeError) as error:
        raise UnsafeEntryError(f"{source}: entry {name!r} ({kind}) cannot be rebuilt from its readable keys: "
                               f"{type(error).__name__}: {error}") from error
    if env_space is not None and kind == str(type(env_space)):
        return env_space  # Dict / Tuple / other spaces: the environment's, when of the same type
    raise UnsafeEntryError(
        f"{source}: entry {name!r} is a {kind or 'value'} that cannot be rebuilt from its readable keys; "
        f"give the environment (env=) or {TRUST_HINT}"
    )


def _schedule_from_repr(text: str) -> Callable[[float], float] | None:
    """``ConstantSchedule(val=..)`` / ``LinearSchedule(start=.., end=.., end_fraction=..)`` /
    ``SimpleLinearSchedule(initial_value=..)`` (rl_zoo3) / a nested ``FloatSchedule(..)``, else ``None``."""
    match = _CALL_REPR.match(text.strip())
    if match is None:
        return None
    name, inside = match.groups()
    if name == "FloatSchedule":
        inner = _schedule_from_repr(inside)
        return FloatSchedule(inner) if inner is not None else None
    try:
        call = ast.parse(f"f({inside})", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args
        fields = {str(kw.arg): ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, AssertionError):
        return None
    if not all(isinstance(value, (int, float)) for value in fields.values()):
        return None
    return _schedule_from_fields(name, fields)


def _schedule_from_fields(name: str, fields: dict[str, Any]) -> Callable[[float], float] | None:
    try:
        if name == "ConstantSchedule":
            return ConstantSchedule(float(fields["val"]))
        if name == "LinearSchedule":
            return LinearSchedule(float(fields["start"]), float(fields["end"]), float(fields["end_fraction"]))
        if name == "SimpleLinearSchedule":
            from rl_zoo3.utils import SimpleLinearSchedule

            return SimpleLinearSchedule(float(fields["initial_value"]))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def rebuild_schedule(name: str, entry: dict[str, Any], data: dict[str, Any], source: Path) -> Callable[[float], float]:
    """A schedule from its readable fields (see the module docstring), else a constant with a warning.

    :param name: the entry
    :param entry: its dict
    :param data: the whole ``data`` document (for the saved ``learning_rate``)
    :param source: the file, for messages
    """
    kind = str(entry.get(TYPE, ""))
    schedule: Callable[[float], float] | None = None
    class_name = kind.rsplit(".", 1)[-1].rstrip("'>")
    if class_name == "FloatSchedule" and isinstance(entry.get("value_schedule"), str):
        inner = _schedule_from_repr(entry["value_schedule"])
        schedule = FloatSchedule(inner) if inner is not None else None
    elif class_name in ("ConstantSchedule", "LinearSchedule", "SimpleLinearSchedule"):
        schedule = _schedule_from_fields(class_name, entry)
    if schedule is not None:
        return schedule
    learning_rate = data.get("learning_rate")
    is_rate = name in ("lr_schedule", "learning_rate") and isinstance(learning_rate, (int, float))
    value = float(learning_rate) if is_rate and isinstance(learning_rate, (int, float)) else 0.0
    warnings.warn(f"{source}: entry {name!r} ({kind}) is a function that cannot be rebuilt without running pickled "
                  f"code; using the constant {value} (acting does not use it; {TRUST_HINT})", UserWarning, stacklevel=3)
    return ConstantSchedule(value)


def rebuild_policy_kwargs(entry: dict[str, Any], source: Path) -> dict[str, Any]:
    """``policy_kwargs`` from its readable items: plain values as they are, ``<class '...'>`` strings resolved
    among ``torch.nn`` modules and ``torch.optim`` optimizers of the allowed packages.

    :raises UnsafeEntryError: an item that was neither (its name is given)
    """
    import torch as th

    rebuilt: dict[str, Any] = {}
    for key, value in entry.items():
        if key in (TYPE, SERIALIZED):
            continue
        if isinstance(value, str):
            match = _CLASS_REPR.match(value)
            if match is not None:
                module, _, name = match.group(1).rpartition(".")
                value = _import_class(module, name, (th.nn.Module, th.optim.Optimizer), f"entry 'policy_kwargs.{key}'", source)
            elif value.startswith("<") or re.match(r"^\{.*\}$|^\[.*\]$|^\w+\(.*\)$", value, re.DOTALL):
                raise UnsafeEntryError(f"{source}: entry 'policy_kwargs.{key}' was saved as {value[:80]!r}, which cannot "
                                       f"be rebuilt without running pickled code; {TRUST_HINT}")
        rebuilt[key] = value
    return rebuilt


def _default_argument(algo_class: type, name: str, fallback: Any) -> Any:
    parameter = inspect.signature(algo_class).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return fallback
    return parameter.default


def _train_freq(algo_class: type) -> TrainFreq:
    value = _default_argument(algo_class, "train_freq", 1)
    if isinstance(value, TrainFreq):
        return value
    if isinstance(value, tuple):
        return TrainFreq(int(value[0]), TrainFrequencyUnit(value[1]))
    return TrainFreq(int(value), TrainFrequencyUnit.STEP)


def rebuild_data(
    model_zip: ModelZip, algo_class: type[BaseAlgorithm], env: Any = None, given: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A replacement for every ``:serialized:`` entry of the zip's ``data`` (see the module docstring).

    :param model_zip: the zip (:func:`read_model_zip`)
    :param algo_class: the algorithm it is loaded as
    :param env: the environment it is loaded with (its spaces stand in for what cannot be read)
    :param given: entries the caller replaces itself (not rebuilt)
    :raises UnsafeEntryError: an entry that cannot be rebuilt safely (the message names it)
    """
    from gymnasium.spaces import Space
    from stable_baselines3.common.buffers import BaseBuffer

    source, data = model_zip.path, model_zip.data
    rebuilt: dict[str, Any] = {
        "policy_class": rebuild_policy_class(data.get("policy_class"), source, getattr(algo_class, "policy_aliases", {}))
    }
    for key in model_zip.serialized_keys():
        entry, kind = data[key], str(data[key].get(TYPE, ""))
        if key == "policy_class" or key in given:
            continue
        if key in ("observation_space", "action_space") or "gymnasium.spaces." in kind:
            env_space = getattr(env, key, None) if env is not None else None
            rebuilt[key] = rebuild_space(key, entry, source, env_space if isinstance(env_space, Space) else None)
        elif key in ("replay_buffer_class", "rollout_buffer_class"):
            name = _class_name(entry)
            if name is None or not isinstance(entry.get("__module__"), str):
                raise UnsafeEntryError(f"{source}: entry {key!r} does not say which class it is; {TRUST_HINT}")
            rebuilt[key] = _import_class(entry["__module__"], name, BaseBuffer, f"entry {key!r}", source)
        elif key in SCHEDULE_KEYS or kind in ("<class 'function'>",) or "Schedule'>" in kind:
            rebuilt[key] = rebuild_schedule(key, entry, data, source)
        elif key == "policy_kwargs":
            rebuilt[key] = rebuild_policy_kwargs(entry, source)
        elif key == "train_freq":
            rebuilt[key] = _train_freq(algo_class)
        elif key in RUNTIME_STATE:
            rebuilt[key] = None
        else:
            raise UnsafeEntryError(f"{source}: entry {key!r} ({kind or 'unknown type'}) cannot be rebuilt without running "
                                   f"pickled code; {TRUST_HINT}")
    return rebuilt


def check_policy_class(algo_class: type[BaseAlgorithm], policy_class: Any, source: Path | str) -> None:
    """Refuse a zip whose policy class the algorithm does not use (an SDN student loaded as DDQN, say).

    :param algo_class: the algorithm loading the file
    :param policy_class: the class the file names
    :param source: the file, for messages
    :raises ValueError: ``policy_class`` derives from none of ``algo_class.policy_aliases``' classes
    """
    aliases = {name: cls for name, cls in getattr(algo_class, "policy_aliases", {}).items() if isinstance(cls, type)}
    if not aliases or (isinstance(policy_class, type) and issubclass(policy_class, tuple(aliases.values()))):
        return
    name = policy_class.__name__ if isinstance(policy_class, type) else repr(policy_class)
    saved_by = ""
    if isinstance(policy_class, type):
        users = sorted(algo for algo, cls in algorithm_table().items()
                       if any(isinstance(alias, type) and issubclass(policy_class, alias)
                              for alias in getattr(cls, "policy_aliases", {}).values()))
        saved_by = f" (a policy of {', '.join(users)})" if users else ""
    raise ValueError(
        f"{source} holds policy class {name}{saved_by}, which {algo_class.__name__} does not use; "
        f"{algo_class.__name__} policies: "
        f"{', '.join(sorted({cls.__name__ for cls in aliases.values()}))}. Load it with the algorithm that saved it"
    )


def load_algorithm(
    algo_class: type[BaseAlgorithm],
    path: str | Path | io.BufferedIOBase,
    env: Any = None,
    device: Any = "auto",
    custom_objects: dict[str, Any] | None = None,
    trusted: bool = False,
    **kwargs: Any,
) -> BaseAlgorithm:
    """``algo_class.load`` without running code from the file (unless ``trusted``).

    The ``:serialized:`` entries of ``data`` are rebuilt (:func:`rebuild_data`) and given to SB3's
    ``BaseAlgorithm.load`` as ``custom_objects``, so SB3 unpickles none of them; it reads the weights with
    ``torch.load(weights_only=True)``. ``custom_objects`` given here win over rebuilt entries.

    :param algo_class: the algorithm to load as
    :param path: the zip (with or without ``.zip``), or an open binary file
    :param env: environment to attach (``None``: none)
    :param device: torch device
    :param custom_objects: entries to use instead of the file's
    :param trusted: use SB3's loader as it is (it unpickles the file's entries: only for files you trust)
    :param kwargs: further attributes, as ``BaseAlgorithm.load`` takes them
    :raises UnsafeEntryError: an entry cannot be rebuilt safely
    :raises ValueError: not an SB3 zip, or a policy class ``algo_class`` does not use
    """
    model_zip = read_model_zip(path)
    if trusted:
        # the zip's own classes decide: SB3's loader as it is, on the bytes read above
        model = BaseAlgorithm.load.__func__(algo_class, io.BytesIO(model_zip.raw), env=env, device=device,  # type: ignore[attr-defined]
                                            custom_objects=custom_objects, **kwargs)
        check_policy_class(algo_class, type(model.policy), model_zip.path)
        return model
    replacements = rebuild_data(model_zip, algo_class, env, frozenset(custom_objects or ()))
    check_policy_class(algo_class, replacements["policy_class"], model_zip.path)
    replacements.update(custom_objects or {})
    return BaseAlgorithm.load.__func__(algo_class, io.BytesIO(model_zip.raw), env=env, device=device,  # type: ignore[attr-defined]
                                       custom_objects=replacements, **kwargs)


def saved_spaces(path: str | Path) -> tuple[spaces.Space, spaces.Space, type]:
    """``(observation space, action space, policy class)`` a zip says it has, read without unpickling.

    :param path: the zip
    """
    model_zip = read_model_zip(path)
    data = model_zip.data
    found = []
    for key in ("observation_space", "action_space"):
        entry = data.get(key)
        if not isinstance(entry, dict):
            raise UnsafeEntryError(f"{model_zip.path}: entry {key!r} is missing")
        found.append(rebuild_space(key, entry, model_zip.path))
    return found[0], found[1], rebuild_policy_class(data.get("policy_class"), model_zip.path)


class SafeLoadMixin:
    """``Algorithm.load`` that runs no code from the file: put it before the SB3 algorithm in the bases.

    The zip's pickled entries are rebuilt from their readable keys (:func:`load_algorithm`); a zip holding
    another algorithm's policy is refused; ``trusted=True`` is SB3's own loader.
    """

    @classmethod
    def load(  # type: ignore[misc]
        cls: type[SelfAlgorithm],
        path: str | Path | io.BufferedIOBase,
        env: Any = None,
        device: Any = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        *,
        trusted: bool = False,
        **kwargs: Any,
    ) -> SelfAlgorithm:
        """Load a zip saved by this algorithm (``BaseAlgorithm.load``'s arguments) without running code from it.

        :param trusted: use SB3's loader unchanged, which unpickles the file's entries and runs any code
            they hold: only for files you wrote or whose author you trust
        """
        model = load_algorithm(cls, path, env=env, device=device, custom_objects=custom_objects, trusted=trusted,
                               print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        return cast(SelfAlgorithm, model)

"""One file format for every sb3-snn policy: constructor arguments and weights, without pickle.

A policy file is one ``torch.save`` of a dict holding only plain data (dicts, lists, tuples, strings,
numbers, booleans, ``None``) and tensors, so :func:`load_policy` reads it with
``torch.load(..., weights_only=True)`` and no code from the file ever runs::

    {
        "format": "sb3-snn/policy",        # FORMAT
        "version": 2,                      # VERSION
        "class": "SDNPolicy",              # the policy class's name
        "module": "sb3_snn.sdn.policies",  # where it is defined (informative)
        "constructor": {...},              # _get_constructor_parameters(), encoded (below)
        "state_dict": {...},               # policy.state_dict(), tensors on the CPU
        "checksum": "sha256:...",          # of class, constructor and state_dict (checksum())
    }

:func:`load_policy` recomputes the checksum and refuses a file whose content does not match it (a flipped
byte in a weight, a truncated tensor), naming the file. It guards against corruption, not against someone
who rewrites the checksum too: only load policy files from sources you trust to have made them.
Version-1 files (no checksum) still load, with a warning.

The constructor arguments are those of ``policy._get_constructor_parameters()`` (SB3's convention: every
argument of ``__init__``; :func:`save_policy` refuses a policy whose dict misses one), minus
``lr_schedule``: a function is not data, and a loaded policy gets SB3's constant
``BasePolicy._dummy_schedule`` as ``BasePolicy.load`` gives it (the optimizer state is not stored either).
Values are written as they are when they are plain data; besides:

- gymnasium spaces (``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``) become
  ``{"__sb3_snn__": "space", "type": "Box", ...}`` (bounds as tensors, dtype by name) and are rebuilt;
- classes (``optimizer_class``, ``activation_fn``) become ``{"__sb3_snn__": "class", "name": "torch.optim.Adam"}``
  and are resolved from :data:`ALLOWED_CLASSES` only (torch's optimizers and activations, SB3's
  ``RMSpropTFLike``);
- numpy scalars and arrays become Python numbers and lists.

Anything else (a lambda, an arbitrary object) is refused when saving, with the argument's name.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import warnings
import zipfile
from typing import Any, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.utils import get_device
from torch import nn

FORMAT = "sb3-snn/policy"
VERSION = 2
#: Versions :func:`load_policy` reads (1: the same without a checksum).
READABLE_VERSIONS = (1, 2)
_TAG = "__sb3_snn__"

SelfPolicy = TypeVar("SelfPolicy", bound=BasePolicy)

_OPTIMIZERS = ("Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD")
_ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softplus", "Identity", "Mish")

#: The classes a policy file may name (constructor arguments such as ``optimizer_class``, ``activation_fn``).
ALLOWED_CLASSES: dict[str, type] = {
    **{f"torch.optim.{name}": getattr(th.optim, name) for name in _OPTIMIZERS},
    **{f"torch.nn.{name}": getattr(nn, name) for name in _ACTIVATIONS},
    "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike": RMSpropTFLike,
}
_CLASS_NAMES = {cls: name for name, cls in ALLOWED_CLASSES.items()}


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A gymnasium space as plain data (see the module docstring).

    :param space: a ``Box``, ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` space
    :raises ValueError: another kind of space
    """
    if isinstance(space, spaces.Box):
        return {_TAG: "space", "type": "Box", "low": th.as_tensor(space.low), "high": th.as_tensor(space.high),
                "dtype": np.dtype(space.dtype).name}
    if isinstance(space, spaces.Discrete):
        return {_TAG: "space", "type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {_TAG: "space", "type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist(),
                "dtype": np.dtype(space.dtype).name}
    if isinstance(space, spaces.MultiBinary):
        return {_TAG: "space", "type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(
        f"cannot write a {type(space).__name__} space into a policy file; supported: Box, Discrete, MultiDiscrete, MultiBinary"
    )


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_dict`.

    :param data: a dict written by :func:`space_to_dict`
    """
    kind = data.get("type")
    if kind == "Box":
        return spaces.Box(low=data["low"].numpy(), high=data["high"].numpy(), dtype=np.dtype(data["dtype"]))
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"], dtype=np.dtype(data["dtype"]))
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    raise ValueError(f"unknown space type {kind!r} in a policy file; expected Box, Discrete, MultiDiscrete or MultiBinary")


def _encode(name: str, value: Any) -> Any:
    """``value`` of the constructor argument ``name`` as plain data (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str, th.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, spaces.Space):
        return space_to_dict(value)
    if isinstance(value, type):
        if value not in _CLASS_NAMES:
            raise ValueError(
                f"constructor argument {name!r}: class {value.__module__}.{value.__qualname__} cannot be written into a "
                f"policy file; allowed classes: {', '.join(sorted(ALLOWED_CLASSES))}"
            )
        return {_TAG: "class", "name": _CLASS_NAMES[value]}
    if isinstance(value, dict):
        if any(not isinstance(key, str) for key in value):
            raise ValueError(f"constructor argument {name!r}: dict keys must be strings, got {list(value)}")
        return {key: _encode(f"{name}.{key}", item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_encode(f"{name}[{i}]", item) for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise ValueError(
        f"constructor argument {name!r}: a {type(value).__name__} cannot be written into a policy file without pickle; "
        "allowed: numbers, strings, booleans, None, lists, tuples, dicts, tensors, gymnasium spaces and the classes "
        "of sb3_snn.common.policy_io.ALLOWED_CLASSES"
    )


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag == "space":
            return space_from_dict(value)
        if tag == "class":
            if value.get("name") not in ALLOWED_CLASSES:
                raise ValueError(
                    f"policy file names class {value.get('name')!r}, which is not allowed; "
                    f"allowed: {', '.join(sorted(ALLOWED_CLASSES))}"
                )
            return ALLOWED_CLASSES[value["name"]]
        if tag is not None:
            raise ValueError(f"unknown entry {tag!r} in a policy file; expected 'space' or 'class'")
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_decode(item) for item in value)
    return value


def _init_parameters(cls: type) -> tuple[set[str], bool]:
    """Names of the arguments of ``cls.__init__`` (without ``self``) and whether it takes ``**kwargs``."""
    parameters = list(inspect.signature(cls).parameters.values())
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind == p.VAR_KEYWORD for p in parameters)


def constructor_arguments(policy: BasePolicy) -> dict[str, Any]:
    """``policy._get_constructor_parameters()`` encoded as plain data, ``lr_schedule`` left out.

    :param policy: the policy to describe
    :raises ValueError: the dict lacks an argument of ``__init__``, names one ``__init__`` does not take,
        or holds a value that cannot be written without pickle (the message names it)
    """
    params = dict(policy._get_constructor_parameters())
    named, takes_kwargs = _init_parameters(type(policy))
    missing = sorted(named - set(params) - {"lr_schedule"})
    if missing:
        raise ValueError(f"{type(policy).__name__}._get_constructor_parameters() lacks constructor arguments {missing}")
    unknown = sorted(set(params) - named)
    if unknown and not takes_kwargs:
        raise ValueError(
            f"{type(policy).__name__}._get_constructor_parameters() returns {unknown}, which __init__ does not take"
        )
    params.pop("lr_schedule", None)
    return {name: _encode(name, value) for name, value in params.items()}


def _digest(hasher: Any, value: Any) -> None:
    """Feed ``value`` (plain data and tensors, as in a policy file) into ``hasher``, unambiguously."""
    if isinstance(value, th.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        hasher.update(tensor.reshape(-1).view(th.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}".encode())
        for key in sorted(value, key=str):
            _digest(hasher, str(key))
            _digest(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for item in value:
            _digest(hasher, item)
    else:
        text = repr(value).encode()
        hasher.update(f"S{type(value).__name__}{len(text)}:".encode() + text)


def checksum(payload: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` of a policy file's ``class``, ``constructor`` and ``state_dict`` (tensor bytes,
    dtypes and shapes included).

    :param payload: the dict a policy file holds
    """
    hasher = hashlib.sha256()
    for key in ("class", "constructor", "state_dict"):
        _digest(hasher, key)
        _digest(hasher, payload.get(key))
    return f"sha256:{hasher.hexdigest()}"


def save_policy(policy: BasePolicy, path: str | os.PathLike) -> None:
    """Write ``policy`` (constructor arguments and weights) to ``path`` in the format of the module docstring.

    :param policy: an sb3-snn policy
    :param path: the file to write (``.pt`` by convention; no suffix is added)
    """
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(policy).__name__,
        "module": type(policy).__module__,
        "constructor": constructor_arguments(policy),
        "state_dict": {key: value.detach().cpu() for key, value in policy.state_dict().items()},
    }
    payload["checksum"] = checksum(payload)
    th.save(payload, path)


def _policy_class(cls: type[SelfPolicy], name: str, path: str | os.PathLike) -> type[SelfPolicy]:
    """``cls`` or the subclass of it called ``name``."""
    pending: list[type] = [cls]
    while pending:
        candidate = pending.pop()
        if candidate.__name__ == name:
            return candidate  # type: ignore[return-value]
        pending.extend(candidate.__subclasses__())
    raise ValueError(f"{path}: holds a {name}, not a {cls.__name__}; load it with {name}.load")


def load_policy(cls: type[SelfPolicy], path: str | os.PathLike, device: th.device | str = "auto") -> SelfPolicy:
    """Read a policy written by :func:`save_policy` (``torch.load(..., weights_only=True)``: no pickle).

    :param cls: the policy class (or a base class of the one in the file)
    :param path: the file
    :param device: torch device (``"auto"``: CUDA when available)
    :raises ValueError: not an sb3-snn policy file (an SB3 model zip is named as such), another version,
        another class, or content that does not match its checksum (corrupted)
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        if "data" in names and any(name.endswith(".pth") for name in names):
            raise ValueError(
                f"{path}: this is a Stable-Baselines3 model zip (entries 'data', 'policy.pth'), not an sb3-snn policy "
                f"file ({FORMAT}, written by policy.save); load the model with sb3_snn.common.models.load_model "
                "(CLI: --algo/--env/-f, or sb3-snn convert --model-path) and save its spiking policy"
            )
    try:
        data = th.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: not an sb3-snn policy file (it holds pickled objects, e.g. SB3's own BasePolicy.save): {error}"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable sb3-snn policy file ({FORMAT}): "
                         f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: not an sb3-snn policy file (format {found!r}, expected {FORMAT!r})")
    if data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: policy file version {data.get('version')} is not supported "
                         f"(readable: {', '.join(map(str, READABLE_VERSIONS))})")
    if data["version"] == 1:
        warnings.warn(f"{path}: a version-1 policy file has no checksum, so corruption cannot be detected; "
                      "save it again to add one", UserWarning, stacklevel=2)
    elif data.get("checksum") != checksum(data):
        raise ValueError(
            f"{path}: corrupted policy file: its content does not match its checksum "
            f"(stored {str(data.get('checksum'))[:20]}..., computed {checksum(data)[:20]}...); "
            "get an intact copy or save the policy again"
        )
    target = _policy_class(cls, str(data.get("class")), path)
    arguments = _decode(data["constructor"])
    if "lr_schedule" in _init_parameters(target)[0]:
        arguments["lr_schedule"] = BasePolicy._dummy_schedule
    policy = target(**arguments)
    policy.load_state_dict(data["state_dict"])
    return policy.to(get_device(device))


class PolicyFileMixin:
    """SB3's ``policy.save(path)`` / ``Policy.load(path, device)`` in this module's format (no pickle, checksummed).

    Put it before ``BasePolicy`` (or a subclass of it) in a policy's bases.
    """

    def save(self, path: str | os.PathLike) -> None:
        """Write the policy's constructor arguments and weights (:func:`save_policy`).

        :param path: the file to write (``.pt`` by convention)
        """
        save_policy(cast(BasePolicy, self), path)

    @classmethod
    def load(cls: type[SelfPolicy], path: str | os.PathLike, device: th.device | str = "auto") -> SelfPolicy:  # type: ignore[misc]
        """Read a policy written by :meth:`save` (``torch.load(..., weights_only=True)``; the checksum is verified).

        :param path: the file written by :meth:`save`
        :param device: torch device (``"auto"``: CUDA when available)
        """
        return load_policy(cls, path, device)

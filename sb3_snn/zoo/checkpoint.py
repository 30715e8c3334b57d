"""Training that survives being killed: periodic checkpoints of the model and its replay buffer.

A run writes ``checkpoint.zip`` (SB3's model format) and ``replay_buffer.npz`` (the buffer's arrays,
no pickle) every ``every`` steps, each written to a temporary name and renamed, so a SIGKILL at any
moment leaves either the previous checkpoint or the new one, never a torn file. Rerunning the same
call loads the checkpoint and trains only the remaining steps: at most one interval is lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback

CHECKPOINT, BUFFER = "checkpoint.zip", "replay_buffer.npz"


def save_buffer(buffer: ReplayBuffer, path: Path) -> None:
    """Write every array of a replay buffer, and its position, to ``path`` (npz, atomically)."""
    arrays: dict[str, Any] = {name: value for name, value in vars(buffer).items() if isinstance(value, np.ndarray)}
    arrays["_pos"], arrays["_full"] = np.array(buffer.pos), np.array(buffer.full)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_buffer(buffer: ReplayBuffer, path: Path) -> None:
    """Fill ``buffer`` (already built with the right sizes) from :func:`save_buffer`'s file."""
    with np.load(path, allow_pickle=False) as arrays:
        for name in arrays.files:
            if name.startswith("_"):
                continue
            current = getattr(buffer, name, None)
            if not isinstance(current, np.ndarray) or current.shape != arrays[name].shape:
                raise ValueError(f"{path}: replay buffer array {name!r} does not match the model's buffer")
            current[...] = arrays[name]
        buffer.pos, buffer.full = int(arrays["_pos"]), bool(arrays["_full"])


class CheckpointCallback(BaseCallback):
    """Save model (+ replay buffer) into ``folder`` every ``every`` environment steps."""

    def __init__(self, folder: Path, every: int) -> None:
        super().__init__()
        self.folder, self.every = Path(folder), max(int(every), 1)
        self._last = 0

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            save_checkpoint(self.model, self.folder)
        return True


def save_checkpoint(model: BaseAlgorithm, folder: Path) -> None:
    """Write ``checkpoint.zip`` and, for off-policy models, ``replay_buffer.npz`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        save_buffer(model.replay_buffer, folder / BUFFER)
    tmp = folder / "checkpoint.tmp.zip"
    model.save(tmp)
    os.replace(tmp, folder / CHECKPOINT)


def checkpoint_timesteps(folder: Path) -> int:
    """Environment steps recorded in ``folder``'s checkpoint (0 when there is none)."""
    import json
    import zipfile

    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return 0
    with zipfile.ZipFile(path) as archive:
        return int(json.loads(archive.read("data")).get("num_timesteps", 0))


def learn_resumable(
    make_model: Callable[[], BaseAlgorithm],
    load_model: Callable[[Path], BaseAlgorithm],
    total_timesteps: int,
    folder: Path,
    every: int,
    callback: MaybeCallback = None,
    **learn_kwargs,
) -> BaseAlgorithm:
    """Train to ``total_timesteps``, resuming from ``folder``'s checkpoint when one is there.

    :param make_model: builds a fresh model (first run)
    :param load_model: loads a model from a checkpoint path (resumed run)
    :param total_timesteps: environment steps of the whole run, across resumptions
    :param folder: where checkpoints live
    :param every: checkpoint interval in environment steps
    :param callback: extra callbacks for ``learn``
    """
    folder = Path(folder)
    checkpoint = folder / CHECKPOINT
    if checkpoint.is_file():
        model = load_model(checkpoint)
        if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None and (folder / BUFFER).is_file():
            load_buffer(model.replay_buffer, folder / BUFFER)
        remaining = total_timesteps - model.num_timesteps
        reset = False
    else:
        model = make_model()
        remaining, reset = total_timesteps, True
    saver = CheckpointCallback(folder, every)
    saver._last = model.num_timesteps
    callbacks: list[BaseCallback] = [saver]
    if isinstance(callback, list):
        callbacks += callback
    elif isinstance(callback, BaseCallback):
        callbacks.append(callback)
    elif callback is not None:  # a plain function, as SB3's learn accepts
        callbacks.append(ConvertCallback(callback))
    learn_kwargs.setdefault("log_interval", 1 if isinstance(model, OffPolicyAlgorithm) else 4)
    if remaining > 0:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=reset, **learn_kwargs)
    return model

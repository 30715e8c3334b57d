"""Training that survives being killed: periodic checkpoints of the model, its replay buffer and its episodes.

Every ``every`` environment steps a run writes into its checkpoint folder

- ``replay_buffer_<S>.npz``: the replay buffer's arrays and position (no pickle), off-policy models only;
- ``episodes_<S>.json``: for each training env's ``Monitor`` file, how many episodes it held and the length
  and reward of the episode in progress;
- ``checkpoint.zip``: the model (SB3's format), holding ``num_timesteps`` = ``S``, written last.

Each file is written under a temporary name and renamed, and the step-tagged files of older checkpoints
are removed only after ``checkpoint.zip`` names the new step, so a SIGKILL at any moment leaves one
consistent checkpoint. A checkpoint is taken between two rollouts (SB3's ``on_rollout_start``): the
transitions of the last step are stored, the gradient steps of the last rollout are done and the
exploration rate is updated, so the buffer holds exactly ``S`` transitions per env (SB3 stores a
transition after the callbacks' ``on_step``, which is why a checkpoint taken there is one short).

Resuming (:func:`restore_checkpoint`) puts the checkpoint's weights, optimizer state, counters
(``num_timesteps``, updates, exploration) and buffer into a model freshly built from the same settings,
and :func:`restore_monitor_files` cuts each Monitor file back to the checkpoint: episodes that ended
after it are dropped (the resumed run plays those steps again), and the episode in progress, which the
resumed run cannot continue (its env is reset), is written as one cut-short episode. The cumulative
episode lengths of the Monitor files are then the run's own step axis across any number of resumptions.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

CHECKPOINT = "checkpoint.zip"
BUFFER = "replay_buffer_{}.npz"
EPISODES = "episodes_{}.json"
_TAGGED = re.compile(r"^(replay_buffer|episodes)_(\d+)\.(npz|json)$")

#: Attributes of a model that move on during training (everything else comes from its settings).
COUNTERS = ("num_timesteps", "_n_updates", "_n_calls", "_episode_num", "exploration_rate",
            "_current_progress_remaining")


def save_buffer(buffer: ReplayBuffer, path: Path) -> None:
    """Write every array of a replay buffer, and its position, to ``path`` (npz, atomically)."""
    arrays: dict[str, Any] = {name: value for name, value in vars(buffer).items() if isinstance(value, np.ndarray)}
    arrays["_pos"], arrays["_full"] = np.array(buffer.pos), np.array(buffer.full)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_buffer(buffer: ReplayBuffer, path: Path) -> None:
    """Fill ``buffer`` (already built with the right sizes) from :func:`save_buffer`'s file.

    :raises ValueError: an array of the file has another shape than the buffer's (the message names it)
    """
    with np.load(path, allow_pickle=False) as arrays:
        for name in arrays.files:
            if name.startswith("_"):
                continue
            current = getattr(buffer, name, None)
            if not isinstance(current, np.ndarray) or current.shape != arrays[name].shape:
                found = None if current is None else getattr(current, "shape", type(current).__name__)
                raise ValueError(f"{path}: replay buffer array {name!r} has shape {arrays[name].shape}, "
                                 f"the model's buffer {found} (was the run's buffer_size or env changed?)")
            current[...] = arrays[name]
        buffer.pos, buffer.full = int(arrays["_pos"]), bool(arrays["_full"])


def _monitor_state(model: BaseAlgorithm, monitor_dir: Path | None) -> list[dict[str, Any]]:
    """Per training env: its Monitor file, the episodes it holds, and the episode in progress."""
    env = model.get_env()
    if monitor_dir is None or env is None:
        return []
    try:
        in_progress = env.get_attr("rewards")  # Monitor's rewards of the episode in progress
    except AttributeError:  # no Monitor in the env
        return []
    state = []
    for rank, rewards in enumerate(in_progress):
        path = Path(monitor_dir) / f"{rank}.monitor.csv"  # make_vec_env's name for env ``rank``
        if not path.is_file():
            continue
        rows = max(len(path.read_text().splitlines()) - 2, 0)  # a JSON line and the CSV header, then episodes
        state.append({"file": path.name, "episodes": rows, "partial_length": len(rewards),
                      "partial_reward": float(sum(rewards))})
    return state


def save_checkpoint(model: BaseAlgorithm, folder: Path, monitor_dir: Path | None = None) -> None:
    """Write the checkpoint of ``model`` into ``folder`` (see the module's description).

    :param model: the model being trained
    :param folder: the checkpoint folder
    :param monitor_dir: where the training envs' ``<rank>.monitor.csv`` files are (``None``: no Monitor files)
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        save_buffer(model.replay_buffer, folder / BUFFER.format(step))
    episodes = folder / EPISODES.format(step)
    tmp = episodes.with_suffix(".tmp")
    tmp.write_text(json.dumps({"num_timesteps": step, "monitors": _monitor_state(model, monitor_dir)}, indent=1))
    os.replace(tmp, episodes)
    tmp_zip = folder / "checkpoint.tmp.zip"
    model.save(tmp_zip)
    os.replace(tmp_zip, folder / CHECKPOINT)
    for path in folder.iterdir():  # files of older checkpoints, now superseded
        match = _TAGGED.match(path.name)
        if match and int(match.group(2)) != step:
            path.unlink(missing_ok=True)


class CheckpointCallback(BaseCallback):
    """Save a checkpoint into ``folder`` at the first rollout boundary at least ``every`` steps after the last.

    :param folder: the checkpoint folder
    :param every: checkpoint interval in environment steps
    :param monitor_dir: where the training envs' Monitor files are (``None``: none)
    """

    def __init__(self, folder: Path, every: int, monitor_dir: Path | None = None) -> None:
        super().__init__()
        self.folder, self.every, self.monitor_dir = Path(folder), max(int(every), 1), monitor_dir
        self._last: int | None = None

    def _on_training_start(self) -> None:
        self._last = self.model.num_timesteps  # a resumed run counts its interval from its checkpoint

    def _on_rollout_start(self) -> None:
        # between rollouts: last transition stored, last rollout's gradient steps done (see the module's description)
        if self.model.num_timesteps - (self._last or 0) >= self.every:
            self._last = self.model.num_timesteps
            save_checkpoint(self.model, self.folder, self.monitor_dir)

    def _on_step(self) -> bool:
        return True


def _zip_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 model zip (plain values readable without unpickling anything)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data"))


def checkpoint_timesteps(folder: Path) -> int:
    """Environment steps recorded in ``folder``'s checkpoint (0 when there is none)."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return 0
    return int(_zip_data(path).get("num_timesteps", 0))


def restore_checkpoint(model: BaseAlgorithm, folder: Path, algo: str) -> int:
    """Put ``folder``'s checkpoint into ``model``, built afresh with the run's settings; returns its step count.

    The weights and optimizer state come from the checkpoint loaded with
    :func:`sb3_snn.common.models.load_model`; the counters (:data:`COUNTERS`) from its plain JSON data;
    the replay buffer from its ``replay_buffer_<S>.npz``. Schedules and hyperparameters stay the fresh
    model's, so training continues with ``learn(remaining, reset_num_timesteps=False)``.

    :param model: a model built like the checkpointed one (same algorithm, policy, buffer size, env)
    :param folder: the checkpoint folder
    :param algo: the algorithm id (``dqn``, ``ddqn``, ``sdn``, ...)
    :raises FileNotFoundError: the folder has no checkpoint, or an off-policy checkpoint lacks its buffer file
    """
    from sb3_snn.common.models import load_model

    folder = Path(folder)
    path = folder / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint in {folder} (expected {CHECKPOINT})")
    saved = load_model(path, algo=algo)
    model.set_parameters(saved.get_parameters(), exact_match=True, device=model.device)  # type: ignore[arg-type]
    data = _zip_data(path)
    for name in COUNTERS:
        value = data.get(name)
        if hasattr(model, name) and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(model, name, value)
    step = int(model.num_timesteps)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        buffer = folder / BUFFER.format(step)
        if not buffer.is_file():
            raise FileNotFoundError(f"{path} is at step {step} but {buffer.name} is missing from {folder}")
        load_buffer(model.replay_buffer, buffer)
    return step


def restore_monitor_files(folder: Path, monitor_dir: Path) -> None:
    """Cut the Monitor files in ``monitor_dir`` back to ``folder``'s checkpoint (see the module's description).

    :param folder: the checkpoint folder
    :param monitor_dir: the experiment folder holding ``<rank>.monitor.csv``
    """
    step = checkpoint_timesteps(folder)
    record = Path(folder) / EPISODES.format(step)
    if not record.is_file():
        return
    for monitor in json.loads(record.read_text())["monitors"]:
        path = Path(monitor_dir) / monitor["file"]
        if not path.is_file():
            continue
        lines = path.read_text().splitlines()
        header, fields, rows = lines[0], lines[1], lines[2:2 + int(monitor["episodes"])]
        if monitor["partial_length"] > 0:  # the episode the resume cuts short, so that its steps count once
            start = json.loads(header[1:]).get("t_start", time.time()) if header.startswith("#") else time.time()
            names = next(csv.reader([fields]))
            values = {"r": round(monitor["partial_reward"], 6), "l": monitor["partial_length"],
                      "t": round(time.time() - float(start), 6)}
            rows.append(",".join(str(values.get(name, "")) for name in names))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join([header, fields, *rows]) + "\n")
        os.replace(tmp, path)

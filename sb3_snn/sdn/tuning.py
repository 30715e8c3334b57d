"""SDN's hyperparameter sampler for rl_zoo3's ``-optimize``.

Sampled: the distillation settings (``temperature``, ``alpha``, ``distillation_loss``: among the Box losses
when the config's is one), the learning rate,
the student's simulation steps per observation (``n_steps``, for the ``"constant"`` encoding; a
``"frames"`` student takes one frame per step), the hidden width (every hidden layer of the config's
``net_arch``) and threshold-dependent batch normalisation (``norm``). The teacher, the buffer and the
schedule of updates stay as the zoo config gives them. :class:`sb3_snn.SDN` exposes the function as
``hyperparameter_sampler``.
"""

from __future__ import annotations

from typing import Any

from sb3_snn.sdn.losses import BOX_LOSSES, LOSSES


def sample_sdn_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Sample SDN's settings; returns constructor hyperparameters with a partial ``policy_kwargs``.

    :param trial: an Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of environments (unused)
    :param additional_args: ``"hyperparams"`` holds the zoo config's hyperparameters (its ``policy_kwargs``
        give the student's depth and encoding)
    """
    config_kwargs = dict(additional_args.get("hyperparams", {}).get("policy_kwargs") or {})
    temperature = trial.suggest_float("temperature", 0.5, 8.0, log=True)
    alpha = trial.suggest_float("alpha", 0.0, 1.0)
    # a config for continuous actions (its loss one of BOX_LOSSES) samples among the Box losses
    continuous = additional_args.get("hyperparams", {}).get("distillation_loss") in BOX_LOSSES
    loss = trial.suggest_categorical("distillation_loss", list(BOX_LOSSES if continuous else LOSSES))
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    width = trial.suggest_categorical("width", [32, 64, 128, 256])
    norm = trial.suggest_categorical("norm", ["none", "tdbn"])
    depth = max(len(config_kwargs.get("net_arch") or [64]), 1)
    policy_kwargs: dict[str, Any] = {"net_arch": [width] * depth, "norm": None if norm == "none" else norm}
    if config_kwargs.get("encoding", "constant") == "constant":
        policy_kwargs["n_steps"] = trial.suggest_categorical("n_steps", [2, 4, 8, 16])
    return {"temperature": temperature, "alpha": alpha, "distillation_loss": loss, "learning_rate": learning_rate,
            "policy_kwargs": policy_kwargs}

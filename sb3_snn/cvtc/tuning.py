"""CVTC's hyperparameter sampler: the policy's own settings, tuned on top of the algorithm's space.

The sampled keys are ``beta`` (Eq. 9), the population encoder (neurons per dimension ``n_points``, the
Gaussian's ``sigma`` and peak height (its ``amplitude``), and for an ``"auto"`` encoder the assumed half-width of unbounded
dimensions, which sets their gains) and the weight-sum regulariser ``weight_sum_reg``. ``q_sign`` and the
choice of encoder preset stay as the zoo config gives them: they follow from the task, not from tuning.
:class:`sb3_snn.cvtc.policies.CVTCPolicy` exposes the function as ``hyperparameter_sampler``;
:mod:`sb3_snn.zoo.samplers` composes it with the algorithm's sampler (DQN's space for DDQN).
"""

from __future__ import annotations

import math
from typing import Any

from sb3_snn.cvtc.encoders import ENCODER_PRESETS

SQRT_2PI = math.sqrt(2 * math.pi)


def sample_cvtc_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Sample CVTC's policy settings; returns ``{"policy_kwargs": {...}}``.

    :param trial: an Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of environments (unused)
    :param additional_args: ``"hyperparams"`` holds the zoo config's hyperparameters; its
        ``policy_kwargs["encoder"]`` decides whether a preset (``"cartpole"``, ``"mountaincar"``) is refined
        or the bounds-derived ``"auto"`` encoder is tuned
    """
    config_kwargs = dict(additional_args.get("hyperparams", {}).get("policy_kwargs") or {})
    beta = trial.suggest_float("beta", 1e-5, 1e-3, log=True)
    weight_sum_reg = trial.suggest_float("weight_sum_reg", 0.1, 100.0, log=True)
    sigma = trial.suggest_float("encoder_sigma", 0.7, 2.8)
    # the Gaussian's peak A / (sigma sqrt(2 pi)) must stay below z_high (6) so spike times stay > 0:
    # sample the peak (the default encoder's is 5.7) and derive A from it
    peak = trial.suggest_float("encoder_peak", 2.0, 5.7)
    configured = config_kwargs.get("encoder")
    preset = configured if isinstance(configured, str) and configured in ENCODER_PRESETS else None
    if isinstance(configured, dict) and configured.get("preset") in ENCODER_PRESETS:
        preset = configured["preset"]
    encoder: dict[str, Any]
    if preset is not None:
        # a preset's gains and centre are fixed for its 20 points: only the Gaussian's shape is tuned
        encoder = {"preset": preset, "sigma": sigma, "amplitude": peak * sigma * SQRT_2PI}
    else:
        n_points = trial.suggest_categorical("encoder_n_points", [10, 20, 40])
        half_range = trial.suggest_float("encoder_half_range", 1.0, 6.0)
        scaled = sigma * n_points / 20  # sigma is in points: keep its width in observation units
        encoder = {"auto": True, "n_points": n_points, "sigma": scaled, "amplitude": peak * scaled * SQRT_2PI,
                   "half_range": half_range}
    return {"policy_kwargs": {"beta": beta, "weight_sum_reg": weight_sum_reg, "encoder": encoder}}

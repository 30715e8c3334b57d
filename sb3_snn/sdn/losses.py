"""Distillation losses between the student's logits and the teacher's action scores, and the gradient step
on them that :meth:`SDN.train <sb3_snn.sdn.sdn.SDN.train>` (offline) and
:class:`~sb3_snn.sdn.distillation.DistillationCallback` (online) both take (:func:`distillation_step`).

- ``"soft_hard_ce"`` (default, the paper's best; Hinton's convention)::

      L = alpha * T^2 * CE(softmax(q / T), softmax(s / T)) + (1 - alpha) * CE(onehot(argmax q), softmax(s))

  The ``T^2`` keeps the soft term's gradient the same size whatever the temperature.
- ``"soft_ce"`` / ``"hard_ce"``: one of the two terms alone.
- ``"mse_onehot"``: the paper's MSE loss, the one-hot argmax of the teacher's scores against the student's
  output in rate units (logits divided by the policy's ``output_scale``).
- ``"mse_minmax"``, ``"mse_softmax"``: this project's additions in the same form, the teacher's scores mapped
  into ``[0, 1]`` by min-max per sample or by a softmax at temperature ``T`` instead of one-hot.

Continuous actions (a ``Box`` action space; the teacher's scores are its deterministic action before the
squash: SAC's Gaussian mean, TD3's ``mu`` before its ``tanh``, PPO's Gaussian mean):

- ``"mse_action"`` (default with a ``tanh`` squash): MSE between the student's and the teacher's actions,
  normalised to ``[-1, 1]`` (``tanh`` of the pre-squash outputs, what SB3's ``scale_action`` gives)::

      L = mean_d (tanh(s_d) - tanh(q_d))^2

  The error that matters: a saturated teacher (SAC's means often reach |q| > 3 on Pendulum, where
  ``tanh`` is flat) asks for the bound, not for a particular large pre-squash value, which a bounded
  membrane readout would chase in vain under an MSE on pre-squash values.
- ``"mse_presquash"`` (default with a ``clip`` squash, PPO / A2C): ``mean_d (s_d - q_d)^2`` on the pre-squash
  values; with ``clip`` an action-space MSE has no gradient outside ``[low, high]``. The teacher's log-std
  is not matched: the student is deterministic, as SB3's ``predict(deterministic=True)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger
from torch.nn import functional as F

if TYPE_CHECKING:  # pragma: no cover
    from sb3_snn.sdn.policies import SDNPolicy
    from sb3_snn.sdn.teachers import Teacher

#: Default distillation temperature of :class:`~sb3_snn.sdn.sdn.SDN` and of the online
#: :class:`~sb3_snn.sdn.distillation.DistillationCallback`, in the units of the teacher's scores. Low: a
#: DQN's Q-values of two actions often differ by a small fraction of a unit, and at a temperature of a few
#: units their softmax is uniform and tells the student nothing about which action is better.
DEFAULT_TEMPERATURE = 0.05
#: Default weight of the soft term.
DEFAULT_ALPHA = 0.9
LOSSES = ("soft_hard_ce", "soft_ce", "hard_ce", "mse_minmax", "mse_softmax", "mse_onehot")
#: Losses for a Box action space (continuous actions).
BOX_LOSSES = ("mse_action", "mse_presquash")


def resolve_loss(loss: str | None, continuous: bool, squash: str | None = None) -> str:
    """The loss to use: ``loss``, or the default of the action space when ``None``; refuses a loss that
    does not fit the action space, naming the ones that do.

    :param loss: a loss name or ``None`` (``"soft_hard_ce"`` for discrete actions; ``"mse_action"`` for Box
        actions squashed with ``tanh``, ``"mse_presquash"`` with ``clip``)
    :param continuous: whether the action space is a Box
    :param squash: the student's squash (Box only)
    """
    if loss is None:
        return ("mse_presquash" if squash == "clip" else "mse_action") if continuous else "soft_hard_ce"
    allowed = BOX_LOSSES if continuous else LOSSES
    if loss not in allowed:
        space = "a Box action space (continuous actions)" if continuous else "a Discrete action space"
        raise ValueError(f"distillation loss {loss!r} does not apply to {space}; expected one of {allowed}")
    return loss


def check_settings(loss: str | None, temperature: float, alpha: float) -> None:
    """Raise a ``ValueError`` naming the wrong distillation setting.

    :param loss: one of :data:`LOSSES` or :data:`BOX_LOSSES`, or ``None`` (the action space's default)
    :param temperature: must be > 0
    :param alpha: must lie in ``[0, 1]``
    """
    if loss is not None and loss not in LOSSES + BOX_LOSSES:
        raise ValueError(f"unknown distillation loss {loss!r}; expected one of {LOSSES + BOX_LOSSES}")
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got temperature={temperature}, alpha={alpha}")


def teacher_targets01(teacher: th.Tensor, kind: str, temperature: float = 1.0) -> th.Tensor:
    """The teacher's scores mapped into ``[0, 1]`` for the MSE losses.

    :param teacher: ``[batch, n_actions]``
    :param kind: ``"minmax"``, ``"softmax"`` or ``"onehot"``
    :param temperature: softmax temperature
    """
    if kind == "minmax":
        low, high = teacher.min(dim=1, keepdim=True).values, teacher.max(dim=1, keepdim=True).values
        return (teacher - low) / (high - low).clamp_min(1e-8)
    if kind == "softmax":
        return F.softmax(teacher / temperature, dim=1)
    if kind == "onehot":
        return F.one_hot(teacher.argmax(dim=1), teacher.shape[1]).to(teacher.dtype)
    raise ValueError(f"unknown [0,1] mapping {kind!r}")


def distillation_loss(
    student: th.Tensor,
    teacher: th.Tensor,
    loss: str = "soft_hard_ce",
    temperature: float = 2.0,
    alpha: float = 0.9,
    output_scale: float = 1.0,
) -> tuple[th.Tensor, dict[str, float]]:
    """The loss to minimise and its parts (floats, for logging).

    :param student: student logits ``[batch, n_actions]`` (with gradient)
    :param teacher: teacher scores ``[batch, n_actions]`` (Q-values or action logits)
    :param loss: one of :data:`LOSSES`
    :param temperature: distillation temperature ``T``
    :param alpha: weight of the soft term (``1 - alpha`` on the hard term)
    :param output_scale: student logit per unit of firing rate (MSE losses compare rates)
    """
    if loss in BOX_LOSSES:
        return continuous_loss(student, teacher, loss)
    if loss not in LOSSES:
        raise ValueError(f"unknown distillation loss {loss!r}; expected one of {LOSSES + BOX_LOSSES}")
    teacher = teacher.detach()
    if loss.startswith("mse_"):
        target = teacher_targets01(teacher, loss[4:], temperature)
        value = F.mse_loss(student / output_scale, target)
        return value, {"loss": value.item()}
    soft_target = F.softmax(teacher / temperature, dim=1)
    soft = -(soft_target * F.log_softmax(student / temperature, dim=1)).sum(dim=1).mean() * temperature**2
    hard = F.cross_entropy(student, teacher.argmax(dim=1))
    weight = {"soft_hard_ce": alpha, "soft_ce": 1.0, "hard_ce": 0.0}[loss]
    value = weight * soft + (1.0 - weight) * hard
    return value, {"loss": value.item(), "loss_soft": soft.item(), "loss_hard": hard.item()}


def continuous_loss(student: th.Tensor, teacher: th.Tensor, loss: str = "mse_action") -> tuple[th.Tensor, dict[str, float]]:
    """The loss of a Box action space (see the module docstring) and its value for logging.

    :param student: the student's pre-squash outputs ``[batch, n_dims]`` (with gradient)
    :param teacher: the teacher's pre-squash deterministic actions ``[batch, n_dims]``
    :param loss: ``"mse_action"`` or ``"mse_presquash"``
    """
    teacher = teacher.detach()
    if loss == "mse_action":
        value = F.mse_loss(th.tanh(student), th.tanh(teacher))  # actions scaled to [-1, 1]
    elif loss == "mse_presquash":
        value = F.mse_loss(student, teacher)
    else:
        raise ValueError(f"unknown loss {loss!r} for continuous actions; expected one of {BOX_LOSSES}")
    return value, {"loss": value.item()}


def distillation_step(
    policy: SDNPolicy,
    teacher: Teacher,
    observations: th.Tensor,
    loss: str = "soft_hard_ce",
    temperature: float = 2.0,
    alpha: float = 0.9,
    max_grad_norm: float = 10.0,
    calibrate_rate: float | None = 0.1,
) -> dict[str, float]:
    """One gradient step of the student towards the teacher on a batch of raw observations.

    Before the student's first step (``policy.network.calibrated`` is False) its hidden layers are scaled
    to fire at ``calibrate_rate`` on this batch (``SpikingStudent.calibrate``; ``None`` or 0 skips it).

    :param policy: the student (in training mode)
    :param teacher: labels the batch (Q-values or action logits)
    :param observations: ``[batch, *obs_shape]`` as the environment produced them
    :param loss: one of :data:`LOSSES`
    :param temperature: distillation temperature ``T``
    :param alpha: weight of the soft term
    :param max_grad_norm: gradient clipping
    :param calibrate_rate: firing rate of the first-step calibration
    :return: the loss parts and the teacher-student action agreement on the batch (discrete actions), or
        ``action_error``: the mean absolute difference of the actions as a share of the range ``high - low``
        (Box actions)
    """
    if calibrate_rate and not bool(policy.network.calibrated):
        policy.network.calibrate(policy.preprocess(observations), calibrate_rate)
    teacher_scores = teacher.logits(observations)
    student_logits = policy(observations)
    value, parts = distillation_loss(student_logits, teacher_scores, loss, temperature, alpha, policy.output_scale)
    policy.optimizer.zero_grad()
    value.backward()
    th.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    policy.optimizer.step()
    if policy.continuous:
        with th.no_grad():
            gap = (policy.squash_actions(student_logits) - policy.squash_actions(teacher_scores)).abs()
            span = th.as_tensor(policy.action_space.high - policy.action_space.low,  # type: ignore[attr-defined]
                                dtype=gap.dtype, device=gap.device)
            parts["action_error"] = (gap / span).mean().item()
    else:
        parts["agreement"] = (student_logits.argmax(dim=1) == teacher_scores.argmax(dim=1)).float().mean().item()
    return parts


def record_statistics(logger: Logger, stats: list[dict[str, float]], policy: SDNPolicy, prefix: str = "distill") -> None:
    """Log the mean of each loss part and the agreement, and the spike statistics of the last training batch.

    Keys: ``{prefix}/loss``, ``loss_soft``, ``loss_hard``, ``agreement`` (or ``action_error``), ``firing_rate/<layer>``,
    ``synops_per_action``.

    :param logger: the SB3 logger (reaches TensorBoard)
    :param stats: one dict per gradient step, as :func:`distillation_step` returns
    :param policy: the student (the spike counts of its last forward pass are logged)
    :param prefix: key prefix
    """
    for key in stats[0]:
        logger.record(f"{prefix}/{key}", float(np.mean([s[key] for s in stats])))
    report = policy.last_cost_report()
    for layer, rate in report.firing_rates.items():
        logger.record(f"{prefix}/firing_rate/{layer}", rate)
    logger.record(f"{prefix}/synops_per_action", report.synops)

"""Distillation losses between the student's logits and the teacher's action scores.

- ``"soft_hard_ce"`` (default, the paper's best; Hinton's convention)::

      L = alpha * T^2 * CE(softmax(q / T), softmax(s / T)) + (1 - alpha) * CE(onehot(argmax q), softmax(s))

  The ``T^2`` keeps the soft term's gradient the same size whatever the temperature.
- ``"soft_ce"`` / ``"hard_ce"``: one of the two terms alone.
- ``"mse_minmax"``, ``"mse_softmax"``, ``"mse_onehot"``: the paper's MSE variants, the teacher's scores
  mapped into ``[0, 1]`` (min-max per sample, softmax at temperature ``T``, one-hot argmax) against the
  student's output in rate units (logits divided by the policy's ``output_scale``).
"""

from __future__ import annotations

import torch as th
from torch.nn import functional as F

LOSSES = ("soft_hard_ce", "soft_ce", "hard_ce", "mse_minmax", "mse_softmax", "mse_onehot")


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
    if loss not in LOSSES:
        raise ValueError(f"unknown distillation loss {loss!r}; expected one of {LOSSES}")
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

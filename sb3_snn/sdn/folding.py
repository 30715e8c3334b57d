"""Folding an evaluation-mode batch normalisation into the synapse before it (tdBN at inference).

Shared by the spiking description (:meth:`SpikingStudent.spiking_description
<sb3_snn.sdn.network.SpikingStudent.spiking_description>`) and the compiled inference path
(:mod:`sb3_snn.sdn.lean`), so that both run the same affine map.
"""

from __future__ import annotations

import numpy as np
import torch as th
from torch import nn


def fold_norm(
    weight: np.ndarray, bias: np.ndarray | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of a synapse with the (evaluation-mode) batch normalisation that follows it folded
    in: ``w * s`` and ``b * s + beta - mean * s`` per output channel, ``s = gamma / sqrt(var + eps)`` (float64).

    :param weight: ``[out, ...]`` the synapse's weight
    :param bias: ``[out]`` its bias, or ``None``
    :param bn: the batch normalisation after it
    """
    assert bn.running_var is not None and bn.running_mean is not None  # evaluation-mode statistics are tracked
    scale = (bn.weight.detach().double() / th.sqrt(bn.running_var.detach().double() + bn.eps)).cpu().numpy()
    shift = bn.bias.detach().double().cpu().numpy() - bn.running_mean.detach().double().cpu().numpy() * scale
    bias = np.zeros_like(scale) if bias is None else bias
    return weight * scale.reshape(-1, *([1] * (weight.ndim - 1))), bias * scale + shift

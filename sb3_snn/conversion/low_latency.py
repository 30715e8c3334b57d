"""Low-latency conversion: quantisation-aware fine-tuning of a copy of the teacher (clip-floor-shift
activations), then integrate-and-fire neurons whose thresholds are the learned clipping levels.

The teacher's ReLU after every hidden layer ``l`` is replaced by a clip-floor-shift (QCFS) activation
with ``L`` levels, a learnable threshold ``lambda_l`` and shift ``phi = 1/2`` (Bu et al., ICLR 2022)::

    h_l(x) = lambda_l * clip(floor(x L / lambda_l + phi) / L, 0, 1)

The copy is trained (straight-through gradient for the floor) to **stay the teacher**: it regresses the
teacher's own outputs (Q-values, or the actor's logits) and their differences between actions on states
the teacher visits (:class:`LowLatencyOptions`), so what is measured against the original teacher is the
copy's quantisation plus the spiking simulation's error, not a different policy.

Converted, layer ``l``'s IF neurons get threshold ``lambda_l`` (weights normalised as in the paper's
method, ``w_l <- w_l lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l``, threshold 1) and an initial
membrane of half the threshold. A hidden neuron driven by a constant current ``z`` for ``T`` steps then
fires ``clip(floor(T z / lambda + 1/2), 0, T)`` times -- exactly the QCFS activation with ``L = T`` -- so the
first hidden layer is exact at ``T = L`` and later layers are close whenever their inputs arrive evenly.
The half-threshold charge is delivered as ``ConvertedQPolicy(rounding="round")``'s bias of ``V_thr / (2T)``
per step (the same total charge; a bias, so every backend runs it); the output layer is left unnormalised
(``lambda_L = 1``) so the robust readout estimates the teacher's outputs themselves.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, cast

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_snn.conversion.extract import SourceNetwork
from sb3_snn.conversion.normalisation import layer_activations
from sb3_snn.conversion.simulation import is_synaptic

#: Conversion methods of :func:`sb3_snn.convert`.
METHODS = ("paper", "low_latency")


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else a ``ValueError`` naming the allowed ones.

    :param method: the conversion method asked for
    """
    if method not in METHODS:
        raise ValueError(f"unknown conversion method {method!r}; expected one of {METHODS}")
    return method


@dataclass
class LowLatencyOptions:
    """Settings of the quantisation-aware fine-tuning (:func:`fine_tune`).

    :param levels: quantisation levels ``L`` of the QCFS activations (the SNN is exact for the first hidden
        layer at ``T = L``)
    :param epochs: passes over the training states
    :param lr: Adam learning rate of the weights, decayed to 0 over the epochs (cosine); the thresholds use
        ``threshold_lr_scale`` times it
    :param threshold_lr_scale: learning rate of the thresholds relative to ``lr``
    :param batch_size: states per gradient step
    :param n_states: training states collected by the teacher playing epsilon-greedily
    :param n_validation: held-out states (other episodes) on which the best epoch is chosen by agreement
        with the teacher's greedy action
    :param epsilon: exploration of the teacher while collecting the states
    :param difference_weight: weight of the loss on the differences between actions (the action gaps,
        which decide the argmax) beside the loss on the outputs themselves
    :param value_weight: weight of the loss on the outputs themselves (0: only their differences)
    :param init_percentile: the thresholds start at this percentile of the teacher's activations
    :param weight_decay: Adam weight decay
    :param seed: seeds the state collection and the training
    """

    levels: int = 16
    epochs: int = 40
    lr: float = 3e-4
    threshold_lr_scale: float = 10.0
    batch_size: int = 128
    n_states: int = 8000
    n_validation: int = 1000
    epsilon: float = 0.05
    difference_weight: float = 1.0
    value_weight: float = 0.1
    init_percentile: float = 99.9
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels (QCFS quantisation levels L) must be at least 1, got {self.levels}")
        if self.epochs < 0 or self.batch_size < 1 or self.n_states < 1 or self.n_validation < 0:
            raise ValueError(
                "epochs >= 0, batch_size >= 1, n_states >= 1 and n_validation >= 0 are needed, got "
                f"{self.epochs}, {self.batch_size}, {self.n_states}, {self.n_validation}"
            )
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")

    @classmethod
    def from_any(cls, options: LowLatencyOptions | dict[str, Any] | None) -> LowLatencyOptions:
        """Options from an instance, a dict of field values (unknown keys are named) or ``None`` (defaults).

        :param options: what the caller gave
        """
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, dict):
            raise TypeError(f"low_latency options must be a LowLatencyOptions or a dict, got {type(options).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"unknown low_latency options {unknown}; allowed: {allowed}")
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)


def _floor_ste(x: th.Tensor) -> th.Tensor:
    """``floor(x)`` forward, identity gradient (straight-through)."""
    return x + (th.floor(x) - x).detach()


class QCFS(nn.Module):
    """Clip-floor-shift activation ``lambda * clip(floor(x L / lambda + phi) / L, 0, 1)``, learnable ``lambda``.

    Its outputs are the ``L + 1`` levels ``lambda k / L``, ``k = 0..L``; as ``L`` grows it tends to
    ``clip(x, 0, lambda)`` (the paper's percentile-clipped ReLU).

    :param levels: ``L``
    :param threshold: initial ``lambda`` (> 0)
    :param shift: ``phi`` (1/2: rounding, matched by an initial membrane of half the threshold)
    """

    def __init__(self, levels: int, threshold: float, shift: float = 0.5) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels}")
        if not threshold > 0:
            raise ValueError(f"threshold lambda must be positive, got {threshold}")
        self.levels = int(levels)
        self.shift = float(shift)
        self.threshold = nn.Parameter(th.tensor(float(threshold)))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """Apply the activation.

        :param x: pre-activations
        """
        lam = self.threshold.abs() + 1e-6
        steps = _floor_ste(x * self.levels / lam + self.shift)
        return lam * th.clamp(steps / self.levels, 0.0, 1.0)


class QCFSNetwork(nn.Module):
    """A copy of the teacher's layers with a :class:`QCFS` after every hidden synaptic layer.

    :param layers: ``Linear``/``Conv2d``/``Flatten`` modules (a ReLU network without its ReLUs, as
        :class:`~sb3_snn.conversion.extract.SourceNetwork` holds it); copied
    :param thresholds: initial ``lambda_l`` per hidden synaptic layer
    :param levels: ``L``
    """

    def __init__(self, layers: list[nn.Module], thresholds: list[float], levels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in layers)
        synaptic = [i for i, layer in enumerate(self.layers) if is_synaptic(layer)]
        self.hidden = synaptic[:-1]
        if len(thresholds) != len(self.hidden):
            raise ValueError(f"{len(thresholds)} thresholds for {len(self.hidden)} hidden layers")
        self.activations = nn.ModuleList(QCFS(levels, t) for t in thresholds)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """The network's outputs (Q-values or logits) on preprocessed input.

        :param x: ``[batch, *input_shape]``
        """
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self.hidden:
                x = self.activations[self.hidden.index(index)](x)
        return x

    @property
    def thresholds(self) -> list[float]:
        """The learned ``lambda_l`` per hidden layer."""
        return [float(cast(QCFS, a).threshold.detach().abs()) + 1e-6 for a in self.activations]


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` produced.

    :param network: the fine-tuned QCFS copy (best validation epoch)
    :param thresholds: its ``lambda_l`` per hidden layer
    :param train_agreement: its greedy action's agreement with the teacher's on the training states
    :param validation_agreement: the same on the validation states (``None`` without them)
    :param initial_validation_agreement: the QCFS copy before training, on the validation states
    :param best_epoch: the epoch kept (0: before training)
    :param history: per epoch, the training loss and the validation agreement
    """

    network: QCFSNetwork
    thresholds: list[float]
    train_agreement: float
    validation_agreement: float | None
    initial_validation_agreement: float | None
    best_epoch: int
    history: list[dict[str, float]]

    def summary(self) -> dict[str, Any]:
        """JSON-able provenance (no weights)."""
        return {
            "thresholds": self.thresholds,
            "train_agreement": self.train_agreement,
            "validation_agreement": self.validation_agreement,
            "initial_validation_agreement": self.initial_validation_agreement,
            "best_epoch": self.best_epoch,
        }


def _initial_thresholds(source: SourceNetwork, x: th.Tensor, percentile: float) -> list[float]:
    with th.no_grad():
        acts = layer_activations(source.layers, x)[:-1]
    out = []
    for act in acts:
        flat = act.reshape(-1).double()
        k = max(1, math.ceil(flat.numel() * (1.0 - percentile / 100.0)))
        value = float(th.topk(flat, k).values.min()) if percentile < 100 else float(flat.max())
        out.append(value if value > 0 else max(float(flat.max()), 1.0))
    return out


def _agreement(network: Callable[[th.Tensor], th.Tensor], x: th.Tensor, greedy: th.Tensor, batch_size: int = 1024) -> float:
    if len(x) == 0:
        return float("nan")
    with th.no_grad():
        hits = sum(
            int((network(x[i : i + batch_size]).argmax(1) == greedy[i : i + batch_size]).sum())
            for i in range(0, len(x), batch_size)
        )
    return hits / len(x)


def distillation_loss(
    student: th.Tensor,
    teacher: th.Tensor,
    scale: float,
    difference_weight: float,
    difference_scale: float | None = None,
    value_weight: float = 1.0,
) -> th.Tensor:
    """Mean squared error on the outputs (in units of ``scale``) plus ``difference_weight`` times that on the
    differences between actions (outputs centred per state, in units of ``difference_scale``).

    The two scales matter: a DQN's Q-values vary across states far more than between the actions of one
    state, and the argmax depends only on the latter.

    :param student: outputs ``[batch, n]`` of the QCFS copy
    :param teacher: the teacher's outputs on the same states
    :param scale: the teacher's output spread (divides the first error)
    :param difference_weight: weight of the centred (action-gap) term
    :param difference_scale: the spread of the teacher's centred outputs (default: ``scale``)
    :param value_weight: weight of the first term (0: only the differences, which fix the greedy action, are
        matched; the outputs then equal the teacher's up to a per-state constant)
    """
    loss = value_weight * F.mse_loss(student / scale, teacher / scale)
    if difference_weight and student.shape[1] > 1:
        gap_scale = difference_scale or scale
        centred_s = student - student.mean(dim=1, keepdim=True)
        centred_t = teacher - teacher.mean(dim=1, keepdim=True)
        loss = loss + difference_weight * F.mse_loss(centred_s / gap_scale, centred_t / gap_scale)
    return loss


def _spread(values: th.Tensor) -> float:
    """Root mean square of ``values`` (1 where it is 0)."""
    value = float(values.double().pow(2).mean().sqrt()) if values.numel() else 0.0
    return value if value > 0 else 1.0


def fine_tune(
    source: SourceNetwork,
    train_x: th.Tensor,
    options: LowLatencyOptions,
    validation_x: th.Tensor | None = None,
    log: Callable[[str], None] | None = None,
) -> FineTuneResult:
    """Quantisation-aware fine-tuning of a QCFS copy of ``source`` to reproduce its own outputs.

    :param source: the teacher's network (not modified)
    :param train_x: preprocessed training states ``[n, *input_shape]``
    :param options: the settings (levels, epochs, learning rates, loss weights, seed)
    :param validation_x: preprocessed held-out states; the epoch whose copy agrees best with the teacher's
        greedy action on them is kept (without them: the last epoch)
    :param log: called with one line per epoch (e.g. ``print``)
    """
    generator = th.Generator().manual_seed(options.seed)
    with th.no_grad():
        target = source.q_values(train_x)
        val_greedy = source.q_values(validation_x).argmax(1) if validation_x is not None and len(validation_x) else None
    train_greedy = target.argmax(1)
    scale = _spread(target - target.mean())
    gap_scale = _spread(target - target.mean(dim=1, keepdim=True))
    network = QCFSNetwork(source.layers, _initial_thresholds(source, train_x, options.init_percentile), options.levels)
    thresholds = [p for a in network.activations for p in a.parameters()]
    weights = [p for layer in network.layers for p in layer.parameters()]
    optimiser = th.optim.Adam(
        [
            {"params": weights, "lr": options.lr, "weight_decay": options.weight_decay},
            {"params": thresholds, "lr": options.lr * options.threshold_lr_scale},
        ]
    )
    steps_per_epoch = max(1, math.ceil(len(train_x) / options.batch_size))
    schedule = th.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, options.epochs * steps_per_epoch))
    has_val = val_greedy is not None
    assert validation_x is not None or not has_val
    initial = _agreement(network, validation_x, val_greedy) if has_val else None  # type: ignore[arg-type]
    best = (initial if initial is not None else -1.0, 0, copy.deepcopy(network.state_dict()))
    history: list[dict[str, float]] = []
    n = len(train_x)
    for epoch in range(1, options.epochs + 1):
        network.train()
        order = th.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, options.batch_size):
            index = order[start : start + options.batch_size]
            loss = distillation_loss(
                network(train_x[index]), target[index], scale, options.difference_weight, gap_scale, options.value_weight
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        network.eval()
        entry = {"epoch": float(epoch), "loss": total / n}
        if has_val:
            entry["validation_agreement"] = _agreement(network, validation_x, val_greedy)  # type: ignore[arg-type]
            if entry["validation_agreement"] > best[0]:
                best = (entry["validation_agreement"], epoch, copy.deepcopy(network.state_dict()))
        history.append(entry)
        if log is not None:
            log(" ".join(f"{k} {v:.5g}" for k, v in entry.items()))
    if has_val:
        network.load_state_dict(best[2])
    network.eval()
    return FineTuneResult(
        network=network,
        thresholds=network.thresholds,
        train_agreement=_agreement(network, train_x, train_greedy),
        validation_agreement=_agreement(network, validation_x, val_greedy) if has_val else None,  # type: ignore[arg-type]
        initial_validation_agreement=initial,
        best_epoch=best[1] if has_val else options.epochs,
        history=history,
    )


def converted_layers(result: FineTuneResult) -> tuple[list[nn.Module], list[float]]:
    """The fine-tuned layers normalised for IF neurons of threshold 1, and the scales used.

    ``lambda_l`` of every hidden layer is its learned threshold, ``lambda_L = 1`` (the robust readout
    estimates the outputs themselves); ``w_l <- w_l lambda_{l-1}/lambda_l``, ``b_l <- b_l/lambda_l``.

    :param result: :func:`fine_tune`'s result
    """
    from sb3_snn.conversion.normalisation import normalise_layers

    layers = [copy.deepcopy(layer) for layer in result.network.layers]
    for layer in layers:
        for param in layer.parameters():
            param.requires_grad_(False)
    scales = [*result.thresholds, 1.0]
    normalise_layers(layers, scales)
    return layers, scales


def preprocess_all(source: SourceNetwork, raw: np.ndarray, batch_size: int = 512) -> th.Tensor:
    """Preprocessed float input of a batch of raw observations, in chunks.

    :param source: the network whose preprocessing applies
    :param raw: ``[n, *obs_shape]``
    :param batch_size: observations per chunk
    """
    return th.cat([source.preprocess(np.asarray(raw[i : i + batch_size])) for i in range(0, len(raw), batch_size)])

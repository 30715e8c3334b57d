"""The SDN student: a small feed-forward LIF network trained by backpropagation through time (STBP).

Time steps ``t = 1..T``; every synaptic layer is followed by spikingjelly LIF neurons (multi-step)::

    v[t] = decay * v[t-1] + I[t]      (LIFNode(tau=1/(1-decay), decay_input=False, v_reset=0))
    s[t] = H(v[t] - threshold)        (surrogate gradient in the backward pass, STBP: Rect)
    v[t] = 0 where s[t] = 1           (hard reset)

The output layer does not spike by default: it is a non-spiking integrator whose mean membrane
potential over the ``T`` steps is the logit (``readout="membrane_mean"``). A firing rate lies in
``[0, 1]`` with resolution ``1/T``; read as a logit and divided by a distillation temperature > 1 it
makes a nearly uniform softmax and almost no gradient. ``readout="rate"`` (spiking output neurons,
logit = ``rate_scale`` x rate) is kept for comparison with the paper.

Encodings: ``"frames"`` feeds a stack of frames (channel axis 0, oldest first as ``VecFrameStack``
stores them) one frame per time step (``steps_per_frame`` steps each), so time carries the order;
``"constant"`` presents the whole observation (stacked channels) as a constant current every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import torch as th
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn

from sb3_snn.sdn.folding import fold_norm
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription

if TYPE_CHECKING:  # pragma: no cover
    from sb3_snn.sdn.lean import LeanStudent

SURROGATES = {"rect": surrogate.Rect, "sigmoid": surrogate.Sigmoid, "atan": surrogate.ATan}
ENCODINGS = ("frames", "constant")
NORMS = (None, "tdbn")
READOUTS = ("membrane_mean", "rate")


def make_surrogate(name: str, alpha: float | None = None) -> surrogate.SurrogateFunctionBase:
    """A spikingjelly surrogate gradient by name (``"rect"``: STBP's rectangle of half-width 0.5/alpha).

    :param name: one of :data:`SURROGATES`
    :param alpha: sharpness; ``None`` keeps spikingjelly's default
    """
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(SURROGATES)}")
    return SURROGATES[name]() if alpha is None else SURROGATES[name](alpha=alpha)


def make_lif(decay: float, threshold: float, surrogate_function: surrogate.SurrogateFunctionBase) -> nn.Module:
    """A multi-step LIF population with the discrete-time semantics of :mod:`sb3_snn.spiking.description`.

    :param decay: membrane decay per step in ``(0, 1]`` (1: integrate-and-fire)
    :param threshold: firing threshold
    :param surrogate_function: surrogate gradient of the Heaviside step
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    if decay == 1.0:
        return neuron.IFNode(v_threshold=threshold, v_reset=0.0, surrogate_function=surrogate_function, step_mode="m")
    return neuron.LIFNode(
        tau=1.0 / (1.0 - decay), decay_input=False, v_threshold=threshold, v_reset=0.0,
        surrogate_function=surrogate_function, step_mode="m",
    )


def lif_inference(current: th.Tensor, decay: float, threshold: float, repeats: int = 1) -> th.Tensor:
    """Spikes ``[T, ...]`` of a hard-reset LIF population driven by ``current``, without autograd.

    The same spike trains as the spikingjelly nodes of :func:`make_lif`, cheaper: on the CPU the
    recurrence runs in numpy on the tensor's memory (:func:`lif_numpy`; on small arrays a numpy call
    costs less than a torch call), elsewhere in a few torch operations per step. Both evaluate
    ``v = v * decay + I``, ``v >= threshold`` in the tensor's dtype, so they give identical spikes.

    :param current: input current ``[S, ...]``; step ``t`` uses ``current[t // repeats]``
    :param decay: membrane decay per step
    :param threshold: firing threshold
    :param repeats: steps each entry of ``current`` is presented for (``T = S * repeats``); the same as
        ``current.repeat_interleave(repeats, 0)`` without building it
    """
    if current.device.type == "cpu" and current.dtype in (th.float32, th.float64) and not current.requires_grad:
        return th.from_numpy(lif_numpy(current.numpy(), decay, threshold, repeats))
    steps = current.shape[0] * repeats
    v, out = th.zeros_like(current[0]), current.new_empty((steps, *current.shape[1:]))
    for step in range(steps):
        v = v.mul_(decay).add_(current[step // repeats]) if decay != 1.0 else v.add_(current[step // repeats])
        spikes = v >= threshold
        out[step] = spikes
        v.masked_fill_(spikes, 0.0)
    return out


def lif_numpy(current: np.ndarray, decay: float, threshold: float, repeats: int = 1) -> np.ndarray:
    """:func:`lif_inference` on numpy arrays: spikes (0/1, ``current``'s dtype) ``[S * repeats, ...]``.

    :param current: input current ``[S, ...]``; step ``t`` uses ``current[t // repeats]``
    :param decay: membrane decay per step
    :param threshold: firing threshold
    :param repeats: steps each entry of ``current`` is presented for
    """
    dtype = current.dtype.type
    decay, threshold = dtype(decay), dtype(threshold)
    steps = current.shape[0] * repeats
    out = np.empty_like(current, shape=(steps, *current.shape[1:]))  # current's memory layout
    v = current[0].copy(order="K")  # the first step from v = 0: v = I (up to the sign of a zero, which no comparison sees)
    spikes = np.empty_like(v, dtype=bool)
    for step in range(steps):
        if step:
            if decay != 1.0:
                np.multiply(v, decay, out=v)
            np.add(v, current[step // repeats], out=v)
        np.greater_equal(v, threshold, out=spikes)
        out[step] = spikes
        if step + 1 < steps:
            np.putmask(v, spikes, 0.0)
    return out


class SpikingStudent(nn.Module):
    """Convolutional (optional) and fully connected LIF layers and a readout.

    :param input_shape: one observation's shape (channel-first for images)
    :param n_actions: number of outputs
    :param conv_arch: ``[(out_channels, kernel, stride), ...]``; empty for an MLP
    :param net_arch: widths of the hidden fully connected layers
    :param threshold: firing threshold of every LIF neuron
    :param decay: membrane decay per step (STBP: 0.2)
    :param surrogate: surrogate gradient name (see :data:`SURROGATES`)
    :param surrogate_alpha: surrogate sharpness (Rect: 1.0 is a window of half-width 0.5)
    :param n_steps: time steps per action; with ``encoding="frames"`` a multiple of the frame count
    :param encoding: ``"frames"`` or ``"constant"`` (see the module docstring)
    :param readout: ``"membrane_mean"`` or ``"rate"``
    :param readout_decay: decay of the non-spiking output integrator (1.0: perfect integrator)
    :param rate_scale: logit = ``rate_scale`` x firing rate when ``readout="rate"``
    :param norm: ``None`` or ``"tdbn"``: threshold-dependent batch normalisation (Zheng et al., AAAI 2021,
        STBP-tdBN) of the synaptic current of every hidden layer after the first (the input layer is
        calibrated instead, see the comment in ``_add``) over batch, time (and space), scaled to
        ``threshold`` (its weight starts at ``threshold``, its bias at 0); keeps the membranes in the
        surrogate's window. An affine map per channel at inference, folded into the weights in
        :meth:`spiking_description`.
    :param input_norm: standardise each input feature, ``(x - shift) / scale``, with the mean and standard
        deviation of the calibration batch (set by :meth:`calibrate`, kept in the buffers ``input_shift`` and
        ``input_scale``; vector inputs only). Without it a feature of small spread (CartPole's pole angle:
        a few hundredths of a radian) drives the first layer far less than the others, and Adam, which moves
        every weight by about the learning rate per step, needs many updates to grow its weights. A fixed
        affine map: :meth:`spiking_description` folds it into the first layer's weights and bias.
    """

    calibrated: th.Tensor  # buffers (registered in __init__)
    input_shift: th.Tensor
    input_scale: th.Tensor

    def __init__(
        self,
        input_shape: Sequence[int],
        n_actions: int,
        conv_arch: Sequence[Sequence[int]] = (),
        net_arch: Sequence[int] = (64,),
        threshold: float = 0.5,
        decay: float = 0.2,
        surrogate: str = "rect",
        surrogate_alpha: float | None = 1.0,
        n_steps: int = 8,
        encoding: str = "constant",
        readout: str = "membrane_mean",
        readout_decay: float = 1.0,
        rate_scale: float = 10.0,
        norm: str | None = None,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        if input_norm and (conv_arch or encoding == "frames"):
            raise ValueError("input_norm standardises vector inputs; it does not apply to convolutions or "
                             f"encoding='frames' (got conv_arch={list(conv_arch)}, encoding={encoding!r})")
        self.input_norm = bool(input_norm)
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
        self.input_shape, self.n_actions = tuple(int(n) for n in input_shape), int(n_actions)
        self.threshold, self.decay, self.n_steps = float(threshold), float(decay), int(n_steps)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
        self.encoding, self.readout, self.norm = encoding, readout, norm
        self.readout_decay, self.rate_scale = float(readout_decay), float(rate_scale)
        self.n_frames = self.input_shape[0] if encoding == "frames" else 1
        if encoding == "frames" and (len(self.input_shape) != 3 or self.n_steps % self.n_frames):
            raise ValueError(
                f"encoding='frames' needs stacked image observations [frames, H, W] and n_steps a multiple of the "
                f"frame count; got shape {self.input_shape} and n_steps={self.n_steps}"
            )
        self.steps_per_frame = self.n_steps // self.n_frames
        make_surrogate(surrogate, surrogate_alpha)  # validate early

        def lif() -> nn.Module:
            return make_lif(self.decay, self.threshold, make_surrogate(surrogate, surrogate_alpha))

        # one step's input shape: a single frame with channel axis kept, or the whole observation
        shape = (1, *self.input_shape[1:]) if encoding == "frames" else self.input_shape
        self.names: list[str] = []
        self.synapses, self.neurons, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        for i, (out_channels, kernel, stride) in enumerate(conv_arch):
            conv = nn.Conv2d(shape[0], int(out_channels), int(kernel), int(stride))
            out_shape = tuple(conv(th.zeros(1, *shape)).shape[1:])
            self._add(f"conv{i + 1}", conv, lif(), shape, out_shape)
            shape = out_shape
        self.flat_input = tuple(shape)
        width = int(np.prod(shape))
        for i, hidden in enumerate(net_arch):
            self._add(f"fc{i + 1}", nn.Linear(width, int(hidden)), lif(), (width,), (int(hidden),))
            width = int(hidden)
        self.out = nn.Linear(width, self.n_actions)
        self.out_neuron = lif() if readout == "rate" else None
        self.out_shape = ((width,), (self.n_actions,))
        self._spikes: dict[str, th.Tensor] = {}
        self._spike_counts: dict[str, th.Tensor] | None = {}
        self._lean_counts: tuple[LeanStudent, np.ndarray] | None = None  # counts of the last forward_lean
        self.register_buffer("calibrated", th.tensor(False))
        self.register_buffer("input_shift", th.zeros(self.input_shape))
        self.register_buffer("input_scale", th.ones(self.input_shape))
        self._readout_cache: dict[tuple, tuple[th.Tensor, th.Tensor]] = {}

    def _add(self, name: str, synapse: nn.Module, population: nn.Module, in_shape: tuple, out_shape: tuple) -> None:
        self.names.append(name)
        self.synapses.append(synapse)
        if self.norm == "tdbn" and len(self.names) == 1:
            # not the input layer: on raw frames its currents are nearly constant (tiny variance), so the lag of
            # its running mean behind the moving weights is amplified by 1/std at inference; it is calibrated
            self.norms.append(nn.Identity())
        elif self.norm == "tdbn":
            bn = nn.BatchNorm2d(out_shape[0]) if isinstance(synapse, nn.Conv2d) else nn.BatchNorm1d(out_shape[0])
            nn.init.constant_(bn.weight, self.threshold)  # tdBN: N(0, (alpha * threshold)^2), alpha = 1
            self.norms.append(bn)
        self.neurons.append(population)
        self.shapes.append((tuple(in_shape), tuple(out_shape)))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        for key in ("input_shift", "input_scale"):  # a student saved before it had these buffers: identity
            state_dict.setdefault(prefix + key, getattr(self, key))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[arg-type]

    def standardize(self, obs: th.Tensor) -> th.Tensor:
        """``(obs - input_shift) / input_scale`` with ``input_norm``, else ``obs`` itself.

        :param obs: a batch of preprocessed observations ``[batch, *input_shape]``
        """
        return (obs - self.input_shift) / self.input_scale if self.input_norm else obs

    @property
    def output_scale(self) -> float:
        """What maps a firing rate to a logit (1.0 for the membrane readout)."""
        return self.rate_scale if self.readout == "rate" else 1.0

    def encode(self, obs: th.Tensor) -> th.Tensor:
        """The distinct inputs of the time steps ``[n_distinct, batch, *step_shape]`` (frames oldest first,
        or the one constant observation); :meth:`forward` repeats them to ``n_steps``."""
        if self.encoding == "frames":
            return obs.transpose(0, 1).unsqueeze(2)  # [F, B, 1, H, W]
        return obs.unsqueeze(0)

    def _expand(self, distinct: th.Tensor) -> th.Tensor:
        repeats = self.steps_per_frame if self.encoding == "frames" else self.n_steps
        return distinct.repeat_interleave(repeats, dim=0) if repeats > 1 else distinct

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Logits ``[batch, n_actions]`` of preprocessed observations ``[batch, *input_shape]``.

        Every call is one independent inference of ``n_steps`` steps (membranes start at 0). With
        gradients on it runs :meth:`forward_nodes` (spikingjelly nodes, surrogate gradients: training);
        with gradients off :meth:`forward_fast` (the same spikes and logits, several times faster).
        Spike counts per layer (summed over time, detached) are in :attr:`last_spike_counts`.
        """
        return self.forward_nodes(obs) if th.is_grad_enabled() else self.forward_fast(obs)

    def forward_nodes(self, obs: th.Tensor) -> th.Tensor:
        """:meth:`forward` through the spikingjelly multi-step LIF nodes (differentiable, BPTT).

        Layer by layer, with time batched: a layer's synaptic operation has no state, so it is applied
        once to all time steps stacked in the batch dimension (``[T * batch, ...]``, what spikingjelly's
        ``SeqToANNContainer`` does), then the layer's nodes run the recurrence over ``[T, batch, ...]``.
        """
        functional.reset_net(self)
        x = self.encode(self.standardize(obs))
        batch, spikes = obs.shape[0], {}
        for index, (name, synapse, population) in enumerate(zip(self.names, self.synapses, self.neurons, strict=True)):
            if isinstance(synapse, nn.Linear):
                x = x.flatten(2)
            current = synapse(x.flatten(0, 1))  # the synaptic operation of all steps at once: [steps * batch, ...]
            if self.norm is not None:  # over batch and time together (tdBN)
                current = self.norms[index](current)
            current = current.view(x.shape[0], batch, *current.shape[1:])
            if index == 0:  # the first layer's current only changes with the frame: computed once per frame, repeated
                current = self._expand(current)
            x = population(current)
            spikes[name] = x.detach()
        return self._readout(x, batch, spikes, fast=False)

    def forward_fast(self, obs: th.Tensor) -> th.Tensor:
        """:meth:`forward` without autograd: the same layer-by-layer, time-batched schedule as
        :meth:`forward_nodes`, the recurrences run by :func:`lif_numpy` on the CPU (:func:`lif_inference`
        elsewhere), the synaptic operations by the same torch functions (so the same sums), the nodes'
        state untouched. Spikes and logits equal those of :meth:`forward_nodes` (tested)."""
        if th.is_grad_enabled():
            with th.no_grad():
                return self.forward_fast(obs)
        x = self.encode(self.standardize(obs))
        batch, spikes = obs.shape[0], {}
        on_cpu = x.device.type == "cpu" and x.dtype in (th.float32, th.float64)
        repeats = self.steps_per_frame if self.encoding == "frames" else self.n_steps
        for index, (name, synapse) in enumerate(zip(self.names, self.synapses, strict=True)):
            if isinstance(synapse, nn.Linear):
                x = x.flatten(2)
            steps = x.shape[0]
            current = _synapse(synapse, x.flatten(0, 1))
            if self.norm is not None:
                current = self.norms[index](current)
            steps_each = repeats if index == 0 else 1  # first layer: one current per distinct input, repeated
            if on_cpu:  # numpy views of the same memory: no copies
                flat = current.numpy()
                x = th.from_numpy(lif_numpy(flat.reshape(steps, batch, *flat.shape[1:]), self.decay, self.threshold,
                                            steps_each))
            else:
                x = lif_inference(current.view(steps, batch, *current.shape[1:]), self.decay, self.threshold, steps_each)
            spikes[name] = x
        return self._readout(x, batch, spikes, fast=True)

    def _readout(self, x: th.Tensor, batch: int, spikes: dict[str, th.Tensor], fast: bool) -> th.Tensor:
        """Logits from the last hidden layer's spikes ``[T, batch, ...]`` (or the encoded input)."""
        x = x.flatten(2) if self.names else self._expand(x.flatten(2))
        steps = x.shape[0]
        if self.out_neuron is not None:
            current = _synapse(self.out, x.flatten(0, 1)) if fast else self.out(x.flatten(0, 1))
            current = current.view(steps, batch, *current.shape[1:])
            out = lif_inference(current, self.decay, self.threshold) if fast else self.out_neuron(current)
            spikes["out"] = out.detach()
            logits = self.rate_scale * out.mean(0)
        else:
            # non-spiking integrator v[t] = d * v[t-1] + W x[t] + b, logit = mean_t v[t]. Linear in x, so
            # logit = W (sum_t w_t x[t]) + b sum_t w_t with w_t = (1/T) sum_{k=t}^{T-1} d^(k-t): one matmul.
            weights, total = self._readout_weights(steps, x.dtype, x.device)
            pooled = th.matmul(weights, x.reshape(steps, -1)).view(batch, -1)
            logits = nn.functional.linear(pooled, self.out.weight, self.out.bias * total)
        self._spikes, self._spike_counts = spikes, None
        self.__dict__["_lean_counts"] = None
        return logits

    def lean(self) -> LeanStudent | None:
        """The compiled inference path of this student (:class:`~sb3_snn.sdn.lean.LeanStudent`), or
        ``None`` where it does not apply (training mode, parameters not float32 on the CPU, a layer shape it
        does not cover, such as padded or rectangular convolutions, which the student does not build).

        Built on first use and cached; rebuilt when a parameter or buffer is changed in place (its
        version counter moves: optimiser steps, ``load_state_dict``, :meth:`calibrate`), replaced, moved,
        or a setting (threshold, decay, ...) changes. Edits through ``tensor.data`` bypass the version
        counter: call :meth:`invalidate_lean` after them.
        """
        if self.training:
            return None
        cached = self.__dict__.get("_lean_cache")
        config = self._lean_config()
        if cached is not None and cached[1] == config and _entries_unchanged(cached[0]):
            return cached[2]
        entries = self._lean_entries()
        plan = None
        tensors = [cast(th.Tensor, entry[2]) for entry in entries if entry[3] is not None]  # versioned: tensors
        if all(t.device.type == "cpu" and (t.dtype == th.float32 or not t.is_floating_point()) for t in tensors):
            from sb3_snn.sdn.lean import LeanStudent  # imports numba: only when first used

            try:
                plan = LeanStudent(self)
            except NotImplementedError:  # a layer shape the compiled path does not cover: the torch path
                plan = None
        self.__dict__["_lean_cache"] = (entries, config, plan)
        return plan

    def invalidate_lean(self) -> None:
        """Drop the cached compiled inference path (rebuilt at the next :meth:`lean`)."""
        self.__dict__.pop("_lean_cache", None)

    def forward_lean(
        self, obs: np.ndarray, divide: bool = False, logits: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray] | None:
        """Logits ``[batch, n_actions]`` (float32) and greedy actions ``[batch]`` (int64) of raw numpy
        observations ``[batch, *input_shape]`` through :meth:`lean` (one compiled call), or ``None`` where
        the lean path does not apply. The logits equal :meth:`forward_fast`'s to float32 rounding (the
        synaptic sums are added in another order; a spike can differ only where a membrane lies within
        that rounding of the threshold, see :mod:`sb3_snn.sdn.lean`). Spike counts are in
        :attr:`last_spike_counts` as after :meth:`forward`.

        :param obs: raw observations (uint8 images or any real dtype)
        :param divide: divide by 255 as SB3's preprocessing does for images
        :param logits: compute the logits' copy (``None`` in their place otherwise: ``predict`` needs only the actions)
        """
        plan = self.lean()
        if plan is None:
            return None
        if self.input_norm:  # the same float32 operations as forward_fast's
            with th.no_grad():
                obs = self.standardize(th.as_tensor(obs, dtype=th.float32)).numpy()
        values, actions, counts = plan(obs, divide, logits)
        state = self.__dict__  # plain attributes: skip nn.Module.__setattr__
        state["_spikes"], state["_spike_counts"], state["_lean_counts"] = {}, None, (plan, counts)
        return values, actions

    def _lean_config(self) -> tuple:
        return (self.threshold, self.decay, self.n_steps, self.encoding, self.readout, self.readout_decay,
                self.rate_scale, self.norm)

    def _lean_entries(self) -> list[tuple[dict, str, object, int | None, int | None]]:
        """What the compiled path depends on: ``(store, key, object, version, data pointer)`` of every
        parameter and buffer of the layers (version / pointer ``None`` for the modules themselves)."""
        entries: list[tuple[dict, str, object, int | None, int | None]] = []
        for container in (self.synapses, self.norms):
            entries.extend((container._modules, key, module, None, None) for key, module in container._modules.items())
        entries.append((self._modules, "out", self.out, None, None))
        for module in [*self.synapses, *self.norms, self.out]:
            for store in (module._parameters, module._buffers):
                entries.extend((store, key, t, t._version, t.data_ptr()) for key, t in store.items() if t is not None)
        return entries

    def __getstate__(self) -> dict:
        """The module's state without the compiled inference cache (rebuilt on use)."""
        state = dict(super().__getstate__())
        state.pop("_lean_cache", None)
        state["_lean_counts"] = None
        return state

    @property
    def last_spike_counts(self) -> dict[str, th.Tensor]:
        """Spike counts ``[batch, *shape]`` per spiking layer (summed over time, detached) of the last
        forward pass; computed when first asked for."""
        if self._spike_counts is None and self._lean_counts is not None:
            plan, counts = self._lean_counts
            self._spike_counts = {name: th.from_numpy(c) for name, c in plan.split_counts(counts).items()}
        elif self._spike_counts is None:
            self._spike_counts = {name: spikes.sum(0) for name, spikes in self._spikes.items()}
        return self._spike_counts

    def _readout_weights(self, steps: int, dtype: th.dtype, device: th.device) -> tuple[th.Tensor, th.Tensor]:
        key = (steps, dtype, device)
        if key not in self._readout_cache:
            powers = self.readout_decay ** th.arange(steps, dtype=th.float64)
            tail = th.stack([powers[: steps - t].sum() for t in range(steps)])  # sum_{k=t}^{T-1} d^(k-t)
            weights = (tail / steps).to(dtype=dtype, device=device)
            self._readout_cache[key] = (weights, weights.sum())
        return self._readout_cache[key]

    @th.no_grad()
    def calibrate(self, obs: th.Tensor, target_rate: float = 0.1, max_iterations: int = 40) -> dict[str, float]:
        """Scale each hidden layer's weights and bias, first to last, until its firing rate on ``obs`` is
        near ``target_rate`` (a data-driven init in the spirit of LSUV).

        With PyTorch's default init, inputs of one frame per step and threshold 0.5, deeper layers
        start silent: no spikes, no surrogate gradient, nothing learns. With ``input_norm`` the input
        standardisation (``input_shift``, ``input_scale``) is set first, from the mean and standard deviation
        of each feature over ``obs`` (a feature constant on ``obs`` keeps scale 1). Returns the rates reached.

        :param obs: a batch of preprocessed observations
        :param target_rate: spikes per neuron per step to aim for
        :param max_iterations: scaling steps per layer at most
        """
        if self.input_norm:
            flat = obs.reshape(obs.shape[0], -1).to(self.input_shift.dtype)
            std = flat.std(dim=0, unbiased=False)
            self.input_shift.copy_(flat.mean(dim=0).view(self.input_shape))
            self.input_scale.copy_(th.where(std > 1e-6, std, th.ones_like(std)).view(self.input_shape))
        rates: dict[str, float] = {}
        for index, (name, module) in enumerate(zip(self.names, self.synapses, strict=True)):
            synapse = cast(nn.Linear | nn.Conv2d, module)
            if self.norm is not None and not isinstance(self.norms[index], nn.Identity):
                self(obs)  # normalised: the norm sets the scale, scaling the weights would change nothing
                rates[name] = float(self.last_spike_counts[name].mean()) / self.n_steps
                continue
            for _ in range(max_iterations):
                self(obs)
                rate = float(self.last_spike_counts[name].mean()) / self.n_steps
                if 0.7 * target_rate <= rate <= 1.4 * target_rate:
                    break
                factor = 2.0 if rate == 0 else min(max((target_rate / rate) ** 0.5, 0.5), 2.0)
                synapse.weight.mul_(factor)
                if synapse.bias is not None:
                    synapse.bias.mul_(factor)
            rates[name] = rate
        self.calibrated.fill_(True)
        return rates

    def spiking_description(self, metadata: dict | None = None) -> SpikingDescription:
        """This network as a :class:`SpikingDescription` (float weights copied to numpy).

        :param metadata: extra provenance to record
        """
        population = NeuronPopulation(
            model="IF" if self.decay == 1.0 else "LIF", threshold=self.threshold, decay=self.decay, reset="zero"
        )
        layers: list[Layer] = []
        named = zip(self.names, self.synapses, self.shapes, strict=True)
        for index, (name, synapse, (in_shape, out_shape)) in enumerate(named):
            if isinstance(synapse, nn.Linear) and _needs_flatten(layers, self.flat_input):
                layers.append(Layer("flatten", "flatten", self.flat_input, (int(np.prod(self.flat_input)),)))
            layer = _layer(name, synapse, in_shape, out_shape, population)
            if self.norm is not None and not isinstance(self.norms[index], nn.Identity):  # inference: affine, folded in
                layer = _fold_norm(layer, cast(nn.modules.batchnorm._BatchNorm, self.norms[index]))
            layers.append(layer)
        if _needs_flatten(layers, self.flat_input):
            layers.append(Layer("flatten", "flatten", self.flat_input, (int(np.prod(self.flat_input)),)))
        if self.readout == "rate":
            out_population, readout = population, {"kind": "rate", "scale": self.rate_scale}
        else:
            out_population = NeuronPopulation(model="nonspiking", decay=self.readout_decay, reset="none")
            readout = {"kind": "membrane_mean", "scale": 1.0}
        layers.append(_layer("out", self.out, *self.out_shape, out_population))
        if self.input_norm:
            first = next(i for i, layer in enumerate(layers) if layer.weight is not None)
            layers[first] = _fold_input_norm(layers[first], self.input_shift, self.input_scale)
        if self.encoding == "frames":
            encoding = {"kind": "frames", "n_frames": self.n_frames, "steps_per_frame": self.steps_per_frame,
                        "frame_axis": 0}
        else:
            encoding = {"kind": "analog"}
        return SpikingDescription(
            layers=layers, input_shape=self.input_shape, encoding=encoding, timesteps=self.n_steps,
            readout=readout, n_actions=self.n_actions, metadata={"method": "sdn", **(metadata or {})},
        )


def _entries_unchanged(entries: list[tuple[dict, str, object, int | None, int | None]]) -> bool:
    """Whether every object of :meth:`SpikingStudent._lean_entries` is still in place, unmodified."""
    for store, key, obj, version, pointer in entries:
        if store.get(key) is not obj:
            return False
        if version is not None:
            tensor = cast(th.Tensor, obj)  # the entries with a version are tensors
            if tensor._version != version or tensor.data_ptr() != pointer:
                return False
    return True


def _synapse(synapse: nn.Module, x: th.Tensor) -> th.Tensor:
    """``synapse(x)`` for the student's ``nn.Linear`` / ``nn.Conv2d`` (zero padding) without the module
    call's overhead: the same functional call its ``forward`` makes."""
    if isinstance(synapse, nn.Linear):
        return nn.functional.linear(x, synapse.weight, synapse.bias)
    conv = cast(nn.Conv2d, synapse)
    return nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _fold_norm(layer: Layer, bn: nn.modules.batchnorm._BatchNorm) -> Layer:
    """``layer`` with the (evaluation-mode) batch normalisation that follows it folded into its weights."""
    assert layer.weight is not None  # a synaptic layer
    weight, bias = fold_norm(layer.weight, layer.bias, bn)
    return dataclasses.replace(layer, weight=weight, bias=bias)


def _fold_input_norm(layer: Layer, shift: th.Tensor, scale: th.Tensor) -> Layer:
    """``layer`` (fully connected) applied to ``(x - shift) / scale``, as one affine layer on ``x``:
    ``w / scale`` per input column, ``b - (w / scale) @ shift``."""
    assert layer.weight is not None  # a synaptic layer
    weight = layer.weight / scale.detach().double().cpu().numpy().reshape(1, -1)
    bias = np.zeros(weight.shape[0]) if layer.bias is None else layer.bias
    bias = bias - weight @ shift.detach().double().cpu().numpy().reshape(-1)
    return dataclasses.replace(layer, weight=weight, bias=bias)


def _needs_flatten(layers: list[Layer], flat_input: tuple[int, ...]) -> bool:
    """A flatten layer goes before the first fully connected layer when the input to it is not 1-D."""
    return len(flat_input) != 1 and not any(layer.kind in ("flatten", "linear") for layer in layers)


def _layer(name: str, module: nn.Module, in_shape: tuple, out_shape: tuple, population: NeuronPopulation) -> Layer:
    synapse = cast(nn.Linear | nn.Conv2d, module)
    weight = synapse.weight.detach().cpu().double().numpy().copy()
    bias = None if synapse.bias is None else synapse.bias.detach().cpu().double().numpy().copy()
    if isinstance(synapse, nn.Conv2d):
        stride = cast(tuple[int, int], tuple(synapse.stride))
        padding = cast(tuple[int, int], tuple(synapse.padding))  # numeric: the student's convolutions are unpadded
        return Layer(name, "conv2d", in_shape, out_shape, weight, bias, stride, padding, population)
    return Layer(name, "linear", in_shape, out_shape, weight, bias, neuron=population)

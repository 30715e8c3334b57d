"""Data-based weight normalisation with a global percentile (Rueckauer et al. 2017, Sec. 2.3).

``lambda_l`` is the p-th percentile of *all* activations of layer ``l`` over the calibration frames
(every neuron, every frame, zeros included, as BindsNET's ``data_based_normalization`` does); then
``w_l <- w_l lambda_{l-1} / lambda_l`` and ``b_l <- b_l / lambda_l`` with ``lambda_0 = 1``.

``torch.quantile`` refuses inputs above 2^24 elements (a NatureCNN's first layer on 1 500 frames
already has more), so :class:`StreamingPercentile` computes the exact numpy-style (linear
interpolation) percentile from chunks while keeping only the largest ``N - floor(q (N - 1))``
values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch as th
from torch import nn

from sb3_snn.conversion.simulation import is_synaptic


class StreamingPercentile:
    """Exact p-th percentile (numpy's default linear interpolation) of a stream of tensors.

    :param percentile: ``p`` in [0, 100]
    :param total: the number of values that will be added (needed to know how many to keep)
    :param max_kept: refuse to keep more values than this (a low ``p`` on a huge stream)
    """

    def __init__(self, percentile: float, total: int, max_kept: int = 50_000_000) -> None:
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {percentile}")
        if total < 1:
            raise ValueError("a percentile needs at least one value")
        self.percentile = float(percentile)
        self.total = int(total)
        self.rank = (self.percentile / 100.0) * (self.total - 1)  # position in ascending order
        self.keep = self.total - math.floor(self.rank)  # values needed from the top
        if self.keep > max_kept:
            raise ValueError(f"percentile {percentile} of {total} values would keep {self.keep} values (> {max_kept})")
        self.seen = 0
        self._top = th.empty(0, dtype=th.float64)

    def add(self, values: th.Tensor) -> None:
        """Add a chunk (any shape)."""
        flat = values.detach().reshape(-1).to("cpu", th.float64)
        self.seen += flat.numel()
        if self.seen > self.total:
            raise ValueError(f"StreamingPercentile got more than the announced {self.total} values")
        if self._top.numel() >= self.keep:  # only values above the current k-th largest can matter
            flat = flat[flat >= self._top.min()]
        merged = th.cat([self._top, flat])
        if merged.numel() > self.keep:
            merged = th.topk(merged, self.keep, sorted=False).values
        self._top = merged

    def value(self) -> float:
        """The percentile of everything added (all ``total`` values must have been added)."""
        if self.seen != self.total:
            raise ValueError(f"StreamingPercentile: announced {self.total} values, got {self.seen}")
        top = th.sort(self._top, descending=True).values
        lo, frac = math.floor(self.rank), self.rank - math.floor(self.rank)
        # ascending index i is descending index N - 1 - i
        x_lo = top[self.total - 1 - lo]
        x_hi = top[max(self.total - 2 - lo, 0)] if frac > 0 else x_lo
        return float(x_lo + frac * (x_hi - x_lo))  # x_lo + (rank - lo)(x_hi - x_lo), as numpy


def global_percentile(chunks: Iterable[th.Tensor], percentile: float, total: int) -> float:
    """Exact percentile over all values of ``chunks`` (``total`` values in all), no 2^24 limit.

    :param chunks: tensors of any shape
    :param percentile: ``p`` in [0, 100]
    :param total: number of values in all chunks
    """
    stream = StreamingPercentile(percentile, total)
    for chunk in chunks:
        stream.add(chunk)
    return stream.value()


def layer_activations(layers: list[nn.Module], x: th.Tensor) -> list[th.Tensor]:
    """ANN activations after every synaptic layer (ReLU applied, except after the last one)."""
    last = max(i for i, layer in enumerate(layers) if is_synaptic(layer))
    outputs = []
    h = x
    for index, layer in enumerate(layers):
        h = layer(h)
        if is_synaptic(layer):
            if index != last:
                h = th.relu(h)
            outputs.append(h)
    return outputs


def percentile_scales(
    layers: list[nn.Module],
    batches: Callable[[], Iterable[th.Tensor]],
    n_samples: int,
    percentile: float = 99.9,
) -> list[float]:
    """``lambda_l`` for every synaptic layer: the global p-th percentile of its activations.

    :param layers: the ANN as ``Linear``/``Conv2d``/``Flatten`` modules (ReLU after all but the last)
    :param batches: returns an iterable of preprocessed input batches (called once)
    :param n_samples: total number of samples in those batches
    :param percentile: ``p``
    """
    streams: list[StreamingPercentile] | None = None
    with th.no_grad():
        for batch in batches():
            acts = layer_activations(layers, batch)
            if streams is None:
                streams = [StreamingPercentile(percentile, n_samples * a[0].numel()) for a in acts]
            for stream, act in zip(streams, acts, strict=True):
                stream.add(act)
    if streams is None:
        raise ValueError("no calibration data")
    scales = []
    for stream in streams:
        value = stream.value()
        if not value > 0:  # a layer that is (almost) never active, or a last layer of negative Q-values
            top = float(stream._top.max())
            value = top if top > 0 else 1.0
        scales.append(value)
    return scales


def normalise_layers(layers: list[nn.Module], scales: list[float]) -> None:
    """Rescale the synaptic layers in place: ``w_l <- w_l lambda_{l-1}/lambda_l``, ``b_l <- b_l/lambda_l``.

    :param layers: as for :func:`percentile_scales`
    :param scales: ``lambda_l`` per synaptic layer
    """
    previous = 1.0  # lambda_0 = 1: the input is used as it is
    synaptic = [layer for layer in layers if is_synaptic(layer)]
    if len(synaptic) != len(scales):
        raise ValueError(f"{len(scales)} scales for {len(synaptic)} synaptic layers")
    with th.no_grad():
        for layer, scale in zip(synaptic, scales, strict=True):
            layer.weight.mul_(previous / scale)  # w_l <- w_l lambda_{l-1} / lambda_l
            if layer.bias is not None:
                layer.bias.div_(scale)  # b_l <- b_l / lambda_l
            previous = scale

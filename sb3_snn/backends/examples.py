"""Small example spiking descriptions shaped like the project's policies (for tests, docs, benchmarks).

- :func:`converted_like`: a ReLU MLP converted to IF neurons with reset by subtraction, analog
  input, data-based weight normalisation and the "robust" readout (the converted DQN's shape);
- :func:`sdn_like`: LIF neurons (``decay < 1``), reset to zero, a non-spiking readout layer with a
  ``membrane_mean`` readout, ``frames`` or ``analog`` encoding (the SDN student's shape);
- :func:`conv_like`: a small convolutional IF network (big enough to be split across cores).

Weights are random (seeded), not trained: good for checking that two simulations agree, not for
playing a game.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription

#: CartPole-like observation scales (position, velocity, angle, angular velocity)
CARTPOLE_SCALE = np.array([1.0, 1.5, 0.1, 1.5])


def example_observations(description: SpikingDescription, n: int = 256, seed: int = 0) -> np.ndarray:
    """Gaussian observations of the description's input shape (CartPole scales for a 4-vector)."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, *description.input_shape))
    if description.input_shape[-1] == 4:
        obs = obs * CARTPOLE_SCALE
    if description.metadata.get("nonnegative_input"):
        obs = np.abs(obs)
    return obs


def _normalise(weights: list[np.ndarray], biases: list[np.ndarray], obs: np.ndarray, percentile: float) -> None:
    """Data-based normalisation (Rueckauer et al. 2017): scale each layer by its activation percentile."""
    x, previous = obs.reshape(len(obs), -1), 1.0
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = x @ w.T + b
        if i < len(weights) - 1:
            a = np.maximum(a, 0)
        scale = float(np.percentile(np.abs(a), percentile)) or 1.0
        weights[i] = w * previous / scale
        biases[i] = b / scale
        previous, x = scale, np.maximum(a, 0)


def converted_like(
    n_in: int = 4, hidden: tuple[int, ...] = (64, 64), n_actions: int = 2, timesteps: int = 64,
    seed: int = 0, percentile: float = 99.9,
) -> SpikingDescription:
    """An IF / reset-by-subtraction network with analog input and the robust readout.

    :param n_in: observation size
    :param hidden: hidden layer widths
    :param n_actions: outputs
    :param timesteps: simulation steps per action
    :param seed: weight seed
    :param percentile: activation percentile used for the normalisation
    """
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_actions]
    weights = [rng.standard_normal((o, i)) * np.sqrt(2.0 / i) for i, o in itertools.pairwise(sizes)]
    biases = [rng.standard_normal(o) * 0.1 for o in sizes[1:]]
    obs = rng.standard_normal((1024, n_in)) * (CARTPOLE_SCALE if n_in == 4 else 1.0)
    _normalise(weights, biases, obs, percentile)
    layers = [
        Layer(f"fc{k}", "linear", (i,), (o,), w, b, neuron=NeuronPopulation("IF", threshold=1.0, reset="subtract"))
        for k, (i, o, w, b) in enumerate(zip(sizes[:-1], sizes[1:], weights, biases, strict=True))
    ]
    return SpikingDescription(
        layers, (n_in,), {"kind": "analog"}, timesteps, {"kind": "robust"}, n_actions,
        metadata={"method": "example/converted_like", "seed": seed},
    )


def sdn_like(
    n_in: int = 4, hidden: tuple[int, ...] = (64, 64), n_actions: int = 2, decay: float = 0.5,
    encoding: str = "frames", n_frames: int = 4, steps_per_frame: int = 2, timesteps: int | None = None,
    seed: int = 2,
) -> SpikingDescription:
    """A LIF / reset-to-zero network with a non-spiking readout layer and the membrane-mean readout.

    :param n_in: features per frame
    :param hidden: hidden layer widths
    :param n_actions: outputs
    :param decay: membrane decay per step (``1 - 1/tau``)
    :param encoding: ``"frames"`` (a stack of ``n_frames`` frames fed one after another) or ``"analog"``
    :param n_frames: frames in the stack (``"frames"`` only)
    :param steps_per_frame: steps each frame is presented
    :param timesteps: steps per action (default: ``n_frames * steps_per_frame``, or 8 for analog)
    :param seed: weight seed
    """
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_actions]
    layers: list[Layer] = []
    if encoding == "frames":
        input_shape: tuple[int, ...] = (n_frames, n_in)
        layers.append(Layer("flatten", "flatten", (1, n_in), (n_in,)))
        enc = {"kind": "frames", "n_frames": n_frames, "steps_per_frame": steps_per_frame}
        steps = timesteps or n_frames * steps_per_frame
    else:
        input_shape, enc, steps = (n_in,), {"kind": "analog"}, timesteps or 8
    for k, (i, o) in enumerate(itertools.pairwise(sizes)):
        last = k == len(sizes) - 2
        w = rng.standard_normal((o, i)) * np.sqrt(2.0 / i) * (1.0 if last else 2.0)
        b = np.zeros(o) if last else rng.standard_normal(o) * 0.1
        neuron = NeuronPopulation("nonspiking", reset="none", decay=decay) if last else NeuronPopulation(
            "LIF", threshold=1.0, decay=decay, reset="zero")
        layers.append(Layer(f"fc{k}", "linear", (i,), (o,), w, b, neuron=neuron))
    return SpikingDescription(
        layers, input_shape, enc, steps, {"kind": "membrane_mean", "scale": 1.0}, n_actions,
        metadata={"method": "example/sdn_like", "seed": seed},
    )


def conv_like(
    in_channels: int = 2, size: int = 16, channels: int = 8, hidden: int = 32, n_actions: int = 3,
    timesteps: int = 16, seed: int = 1,
) -> SpikingDescription:
    """A conv (stride 2) -> linear -> linear IF network with reset by subtraction and the rate readout.

    :param in_channels: input channels
    :param size: input height and width
    :param channels: conv output channels
    :param hidden: hidden linear width
    :param n_actions: outputs
    :param timesteps: steps per action
    :param seed: weight seed
    """
    rng = np.random.default_rng(seed)
    out = size // 2
    conv_w = rng.standard_normal((channels, in_channels, 3, 3)) * np.sqrt(2.0 / (in_channels * 9))
    flat = channels * out * out
    w1 = rng.standard_normal((hidden, flat)) * np.sqrt(2.0 / flat) * 2.0
    w2 = rng.standard_normal((n_actions, hidden)) * np.sqrt(2.0 / hidden) * 2.0
    if_sub: dict[str, Any] = dict(threshold=1.0, reset="subtract")
    layers = [
        Layer("conv0", "conv2d", (in_channels, size, size), (channels, out, out), conv_w, np.zeros(channels),
              stride=(2, 2), padding=(1, 1), neuron=NeuronPopulation("IF", **if_sub)),
        Layer("flatten", "flatten", (channels, out, out), (flat,)),
        Layer("fc1", "linear", (flat,), (hidden,), w1, rng.standard_normal(hidden) * 0.05,
              neuron=NeuronPopulation("IF", **if_sub)),
        Layer("fc2", "linear", (hidden,), (n_actions,), w2, np.zeros(n_actions), neuron=NeuronPopulation("IF", **if_sub)),
    ]
    return SpikingDescription(
        layers, (in_channels, size, size), {"kind": "analog"}, timesteps, {"kind": "robust"}, n_actions,
        metadata={"method": "example/conv_like", "seed": seed, "nonnegative_input": True},
    )

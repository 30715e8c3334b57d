"""Population encoding of a continuous observation into input spike times (CVTC, Wu et al. 2022, Sec. 4).

Each observation dimension i drives K input neurons k = 0..K-1 whose spike times (z-domain) are

    z_{i,k} = z_high - min(clip, A * Norm(k - c; mean = g_i * (x_i - o_i), sd = sigma))      (paper Eq. 14)

with Norm the normal density: the neurons whose point k - c lies near g_i (x_i - o_i) fire early, the
others at ``z_high``. The paper's code has no offset (o = 0); :meth:`PopulationEncoder.from_space`
derives gains and offsets from a Box's bounds so that [low, high] spans the K points.

``Discrete``, ``MultiDiscrete`` and ``MultiBinary`` observations are one-hot / bit vectors (as SB3's
``preprocess_obs`` makes them), and a bit needs no population: :meth:`PopulationEncoder.for_bits` gives
one input neuron per bit, a 1 spiking early (``z = z_early``, default 1.0, i.e. ``t = ln z = 0``) and a 0
late (``z = z_high``, default 6.0, ``t = ln 6``, when every distant neuron of a Box population fires).
A late spike rather than none: in CVTC every input neuron spikes once (a missing spike would be
``z = inf``, which the z-domain layers cannot weigh). It is the same Eq. 14 with ``K = 1``, ``c = 0``,
``g = o = 1``, a narrow Gaussian (``sigma = 0.05``: a 0 bit's drive ``~ 1e-86`` rounds away) and
``clip = z_high - z_early``, so a spiking description keeps the ``population_temporal`` encoding that the
reference simulation and the backends already run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

#: The constants of the paper's code. ``gains`` are per observation dimension.
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "cartpole": dict(n_points=20, amplitude=20.0, center=9.5, sigma=1.4, gains=(20.0, 2.0, 20.0, 2.0), clip=None),
    "mountaincar": dict(n_points=20, amplitude=15.0, center=9.7, sigma=1.2, gains=(7.0, 120.0), clip=5.0),
}

#: Half-width assumed for a dimension whose Box bound is infinite (or beyond ``1e6``): x in [-3, 3].
UNBOUNDED_HALF_RANGE = 3.0

#: Spike times (z-domain) of :meth:`PopulationEncoder.for_bits`: a 1 bit early, a 0 bit late.
BIT_Z_EARLY, BIT_Z_LATE = 1.0, 6.0


class PopulationEncoder(nn.Module):
    """Gaussian population code: ``[batch, n_dims]`` observations -> ``[batch, n_dims * n_points]`` z-times.

    The K neurons of dimension i are contiguous in the output.

    :param gains: g_i, one per observation dimension
    :param offsets: o_i, one per dimension (default 0, as in the paper's code)
    :param n_points: K, neurons per dimension
    :param amplitude: A
    :param center: c (default (K-1)/2)
    :param sigma: standard deviation of the Gaussian, in units of points
    :param z_high: spike time of a neuron far from the value
    :param clip: upper bound on ``A * Norm`` (None: no clip); the earliest spike is ``z_high - clip``
    """

    # buffers (registered in __init__)
    gains: th.Tensor
    offsets: th.Tensor
    points: th.Tensor

    def __init__(
        self,
        gains: Sequence[float] | np.ndarray,
        offsets: Sequence[float] | np.ndarray | None = None,
        n_points: int = 20,
        amplitude: float = 20.0,
        center: float | None = None,
        sigma: float = 1.4,
        z_high: float = 6.0,
        clip: float | None = None,
    ) -> None:
        super().__init__()
        gains_t = th.as_tensor(np.asarray(gains, dtype=np.float32)).flatten()
        offsets_t = (th.zeros_like(gains_t) if offsets is None
                     else th.as_tensor(np.asarray(offsets, dtype=np.float32)).flatten())
        if offsets_t.shape != gains_t.shape:
            raise ValueError(f"offsets {tuple(offsets_t.shape)} and gains {tuple(gains_t.shape)} differ in length")
        if n_points < 1 or sigma <= 0:
            raise ValueError(f"need n_points >= 1 and sigma > 0, got n_points={n_points}, sigma={sigma}")
        self.n_points, self.amplitude, self.sigma = int(n_points), float(amplitude), float(sigma)
        self.center = (self.n_points - 1) / 2 if center is None else float(center)
        self.z_high = float(z_high)
        self.clip = None if clip is None else float(clip)
        peak = self.amplitude / (self.sigma * math.sqrt(2 * math.pi))  # A * Norm at its mode
        earliest = self.z_high - (peak if self.clip is None else min(peak, self.clip))
        if earliest <= 0:
            raise ValueError(f"spike times must stay > 0 (z = exp(t)); the earliest would be {earliest:.3g}: "
                             "lower amplitude or clip, or raise z_high")
        self.register_buffer("gains", gains_t)
        self.register_buffer("offsets", offsets_t)
        self.register_buffer("points", th.arange(self.n_points, dtype=th.float32) - self.center)  # k - c
        self.bits = False  # True for for_bits(): one neuron per bit of a one-hot / bit vector

    @property
    def n_dims(self) -> int:
        """Observation dimensions encoded."""
        return int(self.gains.numel())

    @property
    def out_features(self) -> int:
        """Input neurons produced: ``n_dims * n_points``."""
        return self.n_dims * self.n_points

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Encode a batch of observations.

        :param obs: ``[batch, n_dims]``
        :return: ``[batch, n_dims * n_points]`` spike times in the z-domain
        """
        mean = (self.gains * (obs - self.offsets)).unsqueeze(-1)  # g_i (x_i - o_i), [batch, n_dims, 1]
        density = th.exp(-0.5 * ((self.points - mean) / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))
        drive = self.amplitude * density  # A * Norm(k - c; mean, sigma)
        if self.clip is not None:
            drive = drive.clamp_max(self.clip)
        return (self.z_high - drive).flatten(start_dim=1)  # Eq. 14

    def describe(self) -> dict[str, Any]:
        """The constants, as the ``encoding`` of a spiking description (kind ``population_temporal``)."""
        bits = {"input": "bits", "z_bit_1": self.z_high - float(self.clip or 0.0), "z_bit_0": self.z_high} if self.bits else {}
        return {
            "kind": "population_temporal",
            **bits,
            "domain": "z",
            "formula": "z[i*K+k] = z_high - min(clip, amplitude * normal_pdf(k - center; gains[i]*(x[i]-offsets[i]), sigma))",
            "n_points": self.n_points,
            "amplitude": self.amplitude,
            "center": self.center,
            "sigma": self.sigma,
            "z_high": self.z_high,
            "clip": self.clip,
            "gains": [float(g) for g in self.gains.cpu()],
            "offsets": [float(o) for o in self.offsets.cpu()],
        }

    def options(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this encoder (plain Python values)."""
        described = self.describe()
        keys = ("gains", "offsets", "n_points", "amplitude", "center", "sigma", "z_high", "clip")
        return {key: described[key] for key in keys}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PopulationEncoder:
        """One of :data:`ENCODER_PRESETS` (``"cartpole"``, ``"mountaincar"``), with optional overrides.

        :param name: preset name
        :param overrides: constructor arguments that replace the preset's
        """
        if name not in ENCODER_PRESETS:
            raise ValueError(f"unknown encoder preset {name!r}; presets: {', '.join(ENCODER_PRESETS)}")
        return cls(**{**ENCODER_PRESETS[name], **overrides})

    @classmethod
    def for_bits(cls, n_bits: int, z_early: float = BIT_Z_EARLY, z_high: float = BIT_Z_LATE) -> PopulationEncoder:
        """One input neuron per bit of a one-hot / bit vector: a 1 spikes at ``z_early``, a 0 at ``z_high``
        (see the module docstring: Eq. 14 with one point and a clipped narrow Gaussian).

        :param n_bits: length of the vector (``get_flattened_obs_dim`` of a Discrete, MultiDiscrete or
            MultiBinary space)
        :param z_early: spike time (z-domain, > 0) of a 1 bit
        :param z_high: spike time of a 0 bit (> ``z_early``)
        """
        if not 0.0 < z_early < z_high:
            raise ValueError(f"bit encoding needs 0 < z_early < z_high, got z_early={z_early}, z_high={z_high}")
        ones = np.ones(int(n_bits))
        # the peak drive amplitude / (sigma sqrt(2 pi)) is twice the clip: a 1 bit's drive is exactly the clip;
        # a 0 bit's is 2 * clip * exp(-200), below any rounding of z_high
        sigma = 0.05
        amplitude = 2.0 * (z_high - z_early) * sigma * math.sqrt(2 * math.pi)
        encoder = cls(gains=ones, offsets=ones, n_points=1, amplitude=amplitude, center=0.0, sigma=sigma,
                      z_high=z_high, clip=z_high - z_early)
        encoder.bits = True
        return encoder

    @classmethod
    def from_space(cls, space: spaces.Box, half_range: float = UNBOUNDED_HALF_RANGE, **options: Any) -> PopulationEncoder:
        """An encoder whose K points span each dimension's bounds: ``o = (low+high)/2``,
        ``g = (K-1)/(high-low)``. An infinite bound (or one beyond 1e6) is replaced by
        ``+-half_range`` around the finite one (or around 0).

        :param space: a 1-D Box observation space
        :param half_range: assumed half-width of an unbounded dimension
        :param options: other constructor arguments (``n_points``, ``amplitude``, ``sigma``, ...)
        """
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"population encoding needs a 1-D Box observation space, got {space}")
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        low_ok, high_ok = np.isfinite(low) & (np.abs(low) < 1e6), np.isfinite(high) & (np.abs(high) < 1e6)
        low = np.where(low_ok, low, np.where(high_ok, high - 2 * half_range, -half_range))
        high = np.where(high_ok, high, np.where(low_ok, low + 2 * half_range, half_range))
        n_points = int(options.pop("n_points", 20))
        width = np.maximum(high - low, 1e-8)
        return cls(gains=(n_points - 1) / width, offsets=(low + high) / 2, n_points=n_points, **options)

    @classmethod
    def build(cls, space: spaces.Box, spec: str | dict[str, Any] | None = None) -> PopulationEncoder:
        """The encoder a policy asks for.

        :param space: the observation space
        :param spec: ``None`` or ``"auto"`` (:meth:`from_space`), a preset name, or a dict of options
            (``{"preset": name, ...overrides}``, ``{"auto": True, ...options}`` or full constructor arguments)
        """
        if spec is None or spec == "auto":
            encoder = cls.from_space(space)
        elif isinstance(spec, str):
            encoder = cls.preset(spec)
        else:
            options = dict(spec)
            if "preset" in options:
                encoder = cls.preset(options.pop("preset"), **options)
            elif options.pop("auto", False) or "gains" not in options:
                encoder = cls.from_space(space, **options)
            else:
                encoder = cls(**options)
        if encoder.n_dims != int(np.prod(space.shape)):
            raise ValueError(f"encoder has {encoder.n_dims} gains but the observation has "
                             f"{int(np.prod(space.shape))} dimensions")
        return encoder

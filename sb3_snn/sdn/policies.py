"""Student policies of SDN: ``SDNPolicy`` (vector observations) and ``SDNCnnPolicy`` (stacked Atari frames).

The student acts greedily on the logits of its :class:`~sb3_snn.sdn.network.SpikingStudent`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import Schedule

from sb3_snn.common.policy_io import load_policy, save_policy
from sb3_snn.sdn.network import SpikingStudent
from sb3_snn.spiking.description import SpikingDescription
from sb3_snn.spiking.synops import CostReport, count_operations

SelfSDNPolicy = TypeVar("SelfSDNPolicy", bound="SDNPolicy")


class SDNPolicy(BasePolicy):
    """A spiking student for vector observations: the observation is a constant input current for
    ``n_steps`` steps (``encoding="constant"``).

    :param observation_space: observation space
    :param action_space: a ``Discrete`` action space
    :param lr_schedule: learning rate schedule (the optimizer starts at ``lr_schedule(1)``)
    :param net_arch: hidden fully connected LIF layer widths
    :param conv_arch: ``[(out_channels, kernel, stride), ...]`` convolutional LIF layers (images)
    :param threshold: firing threshold (STBP: 0.5)
    :param decay: membrane decay per step (STBP: 0.2; spikingjelly ``tau = 1 / (1 - decay)``)
    :param surrogate: surrogate gradient, ``"rect"`` (STBP), ``"sigmoid"`` or ``"atan"``
    :param surrogate_alpha: surrogate sharpness (``None``: spikingjelly's default)
    :param n_steps: time steps per action (``None``: 8, or one per frame with ``encoding="frames"``)
    :param encoding: ``"constant"`` (whole observation every step) or ``"frames"`` (one stacked frame
        per step, oldest first)
    :param readout: ``"membrane_mean"`` (non-spiking integrator) or ``"rate"`` (spike rate x ``rate_scale``)
    :param readout_decay: decay of the non-spiking output integrator
    :param rate_scale: logit per unit of firing rate with ``readout="rate"``
    :param norm: ``None`` (default) or ``"tdbn"``: threshold-dependent batch normalisation of the currents of
        the hidden layers after the input layer over batch and time (STBP-tdBN, Zheng et al. 2021), folded
        into the weights at inference; keeps the deep layers' membranes inside the surrogate window, where
        without it they saturate and the student collapses to one action (see ``docs/sdn.md``, Pong)
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of the student
    :param optimizer_kwargs: its extra arguments
    """

    served_algos = ("sdn",)
    # checked in __init__
    observation_space: spaces.Box
    action_space: spaces.Discrete
    network: SpikingStudent

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: Sequence[int] | None = None,
        conv_arch: Sequence[Sequence[int]] | None = None,
        threshold: float = 0.5,
        decay: float = 0.2,
        surrogate: str = "rect",
        surrogate_alpha: float | None = 1.0,
        n_steps: int | None = None,
        encoding: str = "constant",
        readout: str = "membrane_mean",
        readout_decay: float = 1.0,
        rate_scale: float = 10.0,
        norm: str | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, normalize_images=normalize_images,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
        )
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space, got {action_space}")
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(f"{type(self).__name__} needs a Box observation space, got {observation_space}")
        self.net_arch = list(net_arch) if net_arch is not None else [64]
        self.conv_arch = [tuple(layer) for layer in conv_arch] if conv_arch is not None else []
        if n_steps is None:
            n_steps = observation_space.shape[0] if encoding == "frames" else 8
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"{type(self).__name__}: n_steps (time steps per action) must be an integer of at least 1, "
                             f"got {n_steps!r}")
        self.student_kwargs: dict[str, Any] = dict(
            threshold=threshold, decay=decay, surrogate=surrogate, surrogate_alpha=surrogate_alpha,
            n_steps=n_steps, encoding=encoding, readout=readout, readout_decay=readout_decay, rate_scale=rate_scale,
            norm=norm,
        )
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.network = SpikingStudent(
            self.observation_space.shape, int(self.action_space.n), conv_arch=self.conv_arch,
            net_arch=self.net_arch, **self.student_kwargs,
        )
        # every torch optimizer takes lr (SB3 builds its optimizers the same way)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        # what preprocess_obs does to a Box observation, decided once
        self._scale_images = bool(self.normalize_images and is_image_space(self.observation_space))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, conv_arch=self.conv_arch, normalize_images=self.normalize_images,
            optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
            lr_schedule=self._dummy_schedule, **self.student_kwargs,
        )
        return data

    @property
    def n_steps(self) -> int:
        """Time steps per action."""
        return self.network.n_steps

    @property
    def output_scale(self) -> float:
        """Logit per unit of firing rate (1.0 with the membrane readout); MSE losses divide by it."""
        return self.network.output_scale

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Observations as the network takes them (float; images divided by 255), as SB3's
        ``preprocess_obs`` makes them for a ``Box`` space."""
        if self._scale_images:
            return obs / 255.0 if obs.dtype == th.uint8 else obs.float() / 255.0  # uint8 / 255.0: float32, one op
        return obs.float()

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Logits ``[batch, n_actions]`` of a batch of raw observations."""
        return self.network(self.preprocess(obs))

    def _predict(self, observation: th.Tensor | dict[str, th.Tensor], deterministic: bool = True) -> th.Tensor:
        """Greedy actions ``[batch]`` of raw observations (``deterministic`` is ignored: the student acts greedily).

        On the CPU in evaluation mode (as SB3's ``predict`` calls it) this is the compiled inference path
        (:meth:`SpikingStudent.forward_lean <sb3_snn.sdn.network.SpikingStudent.forward_lean>`: one numba call,
        uint8 images divided by 255 as SB3 does); elsewhere the torch inference path.

        :param observation: ``[batch, *obs_shape]`` raw observations
        :param deterministic: ignored
        """
        observation = cast(th.Tensor, observation)  # a Box observation space: one tensor
        network = cast(SpikingStudent, self._modules["network"])  # skips nn.Module.__getattr__
        if observation.device.type == "cpu" and not network.training and not observation.requires_grad:
            result = network.forward_lean(observation.numpy(), self._scale_images, False)  # the compiled CPU path
            if result is not None:
                return th.from_numpy(result[1])
        return network.forward_fast(self.preprocess(observation)).argmax(dim=1).reshape(-1)

    def parameter_bytes(self) -> int:
        """Bytes of the student's parameters as stored (float32: 4 per parameter)."""
        return sum(p.numel() * p.element_size() for p in self.network.parameters())

    def spiking_description(self) -> SpikingDescription:
        """The student as a :class:`~sb3_snn.spiking.description.SpikingDescription`.

        It takes preprocessed observations: image pixels divided by 255 (``metadata["input_scale"]``).
        """
        scale = 1.0 / 255.0 if self.normalize_images and is_image_space(self.observation_space) else 1.0
        return self.network.spiking_description({"policy": type(self).__name__, "input_scale": scale})

    def cost_report(self, obs: np.ndarray | th.Tensor) -> CostReport:
        """SynOps per action and firing rates per layer on a batch of raw observations, in evaluation mode.

        :param obs: raw observations: a numpy observation or batch (as ``predict`` takes them), or a tensor batch
        """
        observations = obs if isinstance(obs, th.Tensor) else cast(th.Tensor, self.obs_to_tensor(obs)[0])
        training = self.training
        self.set_training_mode(False)
        try:
            with th.no_grad():
                self.network.forward_fast(self.preprocess(observations.to(self.device)))
        finally:
            self.set_training_mode(training)
        counts = {name: c.float().cpu().numpy().astype(np.float64) for name, c in self.network.last_spike_counts.items()}
        return count_operations(self.spiking_description(), counts)

    def save(self, path: str | os.PathLike) -> None:
        """Write the policy (constructor arguments and weights, no pickle) in the format of
        :mod:`sb3_snn.common.policy_io`; :meth:`load` reads it back.

        :param path: the file to write
        """
        save_policy(self, path)

    @classmethod
    def load(cls: type[SelfSDNPolicy], path: str | os.PathLike, device: th.device | str = "auto") -> SelfSDNPolicy:  # type: ignore[override]
        """Read a policy written by :meth:`save` (``torch.load(..., weights_only=True)``).

        :param path: the file
        :param device: torch device (``"auto"``: CUDA when available)
        """
        return load_policy(cls, path, device)


class SDNCnnPolicy(SDNPolicy):
    """A spiking student for stacked image frames (channel-first, after ``VecTransposeImage``).

    By default the frames are fed one per time step, oldest first (``encoding="frames"``,
    ``n_steps`` = number of frames); ``encoding="constant"`` presents the stacked channels every step
    (the ablation). Default size: three convolutions and one hidden layer, about 44 KB of float32
    weights on 84x84x4 Atari frames (the paper's students are 5 KB to 50 KB).

    Takes the arguments of :class:`SDNPolicy`.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: Sequence[int] | None = None,
        conv_arch: Sequence[Sequence[int]] | None = None,
        encoding: str = "frames",
        **kwargs: Any,
    ) -> None:
        normalized = not kwargs.get("normalize_images", True)
        if not is_image_space(observation_space, check_channels=False, normalized_image=normalized):
            raise ValueError(f"SDNCnnPolicy needs image observations [frames, H, W], got {observation_space}")
        super().__init__(
            observation_space, action_space, lr_schedule,
            net_arch=[32] if net_arch is None else net_arch,
            conv_arch=[(8, 8, 4), (8, 4, 2), (16, 3, 2)] if conv_arch is None else conv_arch,
            encoding=encoding, **kwargs,
        )

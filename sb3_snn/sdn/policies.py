"""Student policies of SDN: ``SDNPolicy`` (vector observations) and ``SDNCnnPolicy`` (stacked Atari frames).

With a ``Discrete`` action space the student acts greedily on the logits of its
:class:`~sb3_snn.sdn.network.SpikingStudent`. With a ``Box`` action space (a SAC, TD3, DDPG, PPO or A2C
teacher) the same non-spiking membrane readout gives one value per action dimension, squashed into the
space exactly as the teacher squashes its own (``squash="tanh"``: SAC / TD3 / DDPG,
``low + (tanh(u) + 1) / 2 * (high - low)``, SB3's ``unscale_action``; ``"clip"``: PPO / A2C, the Gaussian
mean clipped to ``[low, high]``), so a student that matches the teacher's pre-squash output matches its
actions exactly. A membrane readout is what PopSAN's population decoder (Tang et al. 2020) reduces to
once its decoding weights are learned: a linear map of the last layer's spike counts, here folded into
the output layer's weights.

Observations: a ``Box`` is a constant input current (or one frame per step); a ``Discrete``,
``MultiDiscrete`` or ``MultiBinary`` observation is a constant current of its one-hot / bit vector, as
SB3's ``preprocess_obs`` makes it (``input_shape`` is that vector's length). ``Dict`` and ``Tuple``
observations are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space, preprocess_obs
from stable_baselines3.common.type_aliases import Schedule

from sb3_snn.common.policy_io import PolicyFileMixin
from sb3_snn.sdn.network import SpikingStudent
from sb3_snn.spiking.description import SpikingDescription
from sb3_snn.spiking.simulate import SQUASHES, squash_outputs
from sb3_snn.spiking.synops import CostReport, count_operations


#: Observation spaces the students take (``Dict`` / ``Tuple`` are not supported).
OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
#: Action spaces the students act in.
ACTION_SPACES = (spaces.Discrete, spaces.Box)


def check_student_spaces(name: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a ``ValueError`` naming the space unless an SDN student can serve it.

    :param name: the policy class name, for the message
    :param observation_space: Box, Discrete, MultiDiscrete or MultiBinary
    :param action_space: Discrete, or a Box with finite bounds
    """
    if not isinstance(observation_space, OBSERVATION_SPACES):
        raise ValueError(
            f"{name} does not support the observation space {observation_space} ({type(observation_space).__name__}); "
            "supported: Box, Discrete, MultiDiscrete, MultiBinary (Dict and Tuple observations are not supported: "
            "flatten them, e.g. with gymnasium.wrappers.FlattenObservation)"
        )
    if not isinstance(action_space, ACTION_SPACES):
        raise ValueError(f"{name} does not support the action space {action_space} ({type(action_space).__name__}); "
                         "supported: Discrete, Box")
    if isinstance(action_space, spaces.Box) and not (np.all(np.isfinite(action_space.low))
                                                     and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"{name} needs a Box action space with finite bounds (actions are squashed into them), "
                         f"got {action_space}")


class SDNPolicy(PolicyFileMixin, BasePolicy):
    """A spiking student for vector observations: the observation is a constant input current for
    ``n_steps`` steps (``encoding="constant"``).

    :param observation_space: a ``Box``, ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` observation space
        (the last three as SB3's one-hot / bit vector, a constant current)
    :param action_space: a ``Discrete`` or a ``Box`` action space
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
    :param input_norm: standardise each input feature with the mean and standard deviation of the first
        training batch (folded into the first layer's weights in the spiking description; see
        :class:`~sb3_snn.sdn.network.SpikingStudent`); ``None``: on for vector ``Box`` observations (not images,
        no convolutions) with ``Discrete`` actions, off otherwise (pixels and one-hot / bit vectors are already in
        ``[0, 1]``; Box-action students are distilled and benchmarked without it)
    :param normalize_images: divide image observations by 255
    :param squash: ``Box`` actions only: how the readout is squashed into the action space, ``"tanh"``
        (default; SAC, TD3, DDPG teachers) or ``"clip"`` (PPO, A2C teachers); must be the teacher's
    :param optimizer_class: optimizer of the student
    :param optimizer_kwargs: its extra arguments
    """

    served_algos = ("sdn",)
    network: SpikingStudent

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
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
        input_norm: bool | None = None,
        normalize_images: bool = True,
        squash: str | None = None,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, normalize_images=normalize_images,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
        )
        check_student_spaces(type(self).__name__, observation_space, action_space)
        if isinstance(action_space, spaces.Box):
            squash = "tanh" if squash is None else squash
            if squash not in SQUASHES:
                raise ValueError(f"{type(self).__name__}: unknown squash {squash!r} for the Box action space "
                                 f"{action_space}; expected one of {SQUASHES}")
        elif squash is not None:
            raise ValueError(f"{type(self).__name__}: squash={squash!r} applies to Box action spaces only, "
                             f"got {action_space}")
        self.squash = squash
        self.net_arch = list(net_arch) if net_arch is not None else [64]
        self.conv_arch = [tuple(layer) for layer in conv_arch] if conv_arch is not None else []
        if n_steps is None:
            n_steps = int(observation_space.shape[0]) if encoding == "frames" else 8  # type: ignore[index]
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"{type(self).__name__}: n_steps (time steps per action) must be an integer of at least 1, "
                             f"got {n_steps!r}")
        if input_norm is None:  # vector Box observations, discrete actions: where it was measured
            input_norm = (isinstance(observation_space, spaces.Box) and isinstance(action_space, spaces.Discrete)
                          and not self.conv_arch and encoding == "constant"
                          and not is_image_space(observation_space, check_channels=False))
        self.student_kwargs: dict[str, Any] = dict(
            threshold=threshold, decay=decay, surrogate=surrogate, surrogate_alpha=surrogate_alpha,
            n_steps=n_steps, encoding=encoding, readout=readout, readout_decay=readout_decay, rate_scale=rate_scale,
            norm=norm, input_norm=bool(input_norm),
        )
        self._build(lr_schedule)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One preprocessed observation's shape: a Box's own, or the length of the one-hot / bit vector."""
        if isinstance(self.observation_space, spaces.Box):
            return tuple(int(n) for n in self.observation_space.shape)
        return (int(get_flattened_obs_dim(self.observation_space)),)

    @property
    def continuous(self) -> bool:
        """Whether the actions are continuous (a Box action space)."""
        return isinstance(self.action_space, spaces.Box)

    @property
    def n_outputs(self) -> int:
        """Readout values: one per discrete action, or one per dimension of a Box action space."""
        if isinstance(self.action_space, spaces.Box):
            return int(np.prod(self.action_space.shape))
        return int(cast(spaces.Discrete, self.action_space).n)

    def _build(self, lr_schedule: Schedule) -> None:
        self.network = SpikingStudent(
            self.input_shape, self.n_outputs, conv_arch=self.conv_arch, net_arch=self.net_arch, **self.student_kwargs,
        )
        # every torch optimizer takes lr (SB3 builds its optimizers the same way)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        # what preprocess_obs does to a Box observation, decided once
        self._scale_images = bool(self.normalize_images and is_image_space(self.observation_space))
        self._one_hot = not isinstance(self.observation_space, spaces.Box)
        self._readout = self._squash_readout()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, conv_arch=self.conv_arch, normalize_images=self.normalize_images,
            optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
            lr_schedule=self._dummy_schedule, squash=self.squash, **self.student_kwargs,
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
        """Observations as the network takes them, as SB3's ``preprocess_obs`` makes them: a ``Box`` as
        float (images divided by 255); ``Discrete`` / ``MultiDiscrete`` one-hot, ``MultiBinary`` bits as
        float, flattened to ``[batch, input_shape[0]]``.

        :param obs: a batch of raw observations
        """
        if self._one_hot:
            return cast(th.Tensor, preprocess_obs(obs, self.observation_space)).float().reshape(-1, self.input_shape[0])
        if self._scale_images:
            return obs / 255.0 if obs.dtype == th.uint8 else obs.float() / 255.0  # uint8 / 255.0: float32, one op
        return obs.float()

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Scores ``[batch, n_outputs]`` of a batch of raw observations: logits (``Discrete`` actions) or the
        pre-squash actions (``Box``: :meth:`squash_actions` maps them into the space)."""
        return self.network(self.preprocess(obs))

    def squash_actions(self, outputs: th.Tensor) -> th.Tensor:
        """Box actions ``[batch, *action_shape]`` from the readout values (the teacher's squash,
        :func:`~sb3_snn.spiking.simulate.squash_outputs`).

        :param outputs: ``[batch, n_outputs]`` readout values (:meth:`forward`)
        """
        shape = cast(spaces.Box, self.action_space).shape
        return squash_outputs(outputs, self._readout).reshape(-1, *shape)

    def _predict(self, observation: th.Tensor | dict[str, th.Tensor], deterministic: bool = True) -> th.Tensor:
        """Greedy actions ``[batch]`` of raw observations, or ``[batch, *action_shape]`` Box actions inside the
        space (``deterministic`` is ignored: the student is deterministic).

        On the CPU in evaluation mode (as SB3's ``predict`` calls it) this is the compiled inference path
        (:meth:`SpikingStudent.forward_lean <sb3_snn.sdn.network.SpikingStudent.forward_lean>`: one numba call,
        uint8 images divided by 255 as SB3 does); elsewhere the torch inference path.

        :param observation: ``[batch, *obs_shape]`` raw observations
        :param deterministic: ignored
        """
        observation = cast(th.Tensor, observation)  # not a Dict observation space: one tensor
        network = cast(SpikingStudent, self._modules["network"])  # skips nn.Module.__getattr__
        if observation.device.type == "cpu" and not network.training and not observation.requires_grad:
            raw = self.preprocess(observation).numpy() if self._one_hot else observation.numpy()
            result = network.forward_lean(raw, self._scale_images, self.continuous)  # the compiled CPU path
            if result is not None:
                values, actions = result
                if self.continuous:
                    assert values is not None  # asked for
                    return self.squash_actions(th.from_numpy(values))
                return th.from_numpy(actions)
        outputs = network.forward_fast(self.preprocess(observation))
        return self.squash_actions(outputs) if self.continuous else outputs.argmax(dim=1).reshape(-1)

    def parameter_bytes(self) -> int:
        """Bytes of the student's parameters as stored (float32: 4 per parameter)."""
        return sum(p.numel() * p.element_size() for p in self.network.parameters())

    def spiking_description(self) -> SpikingDescription:
        """The student as a :class:`~sb3_snn.spiking.description.SpikingDescription`.

        It takes preprocessed observations (:meth:`preprocess`): image pixels divided by 255
        (``metadata["input_scale"]``), the one-hot / bit vector of a ``Discrete``, ``MultiDiscrete`` or
        ``MultiBinary`` observation (``metadata["input"] = "one_hot"``). With a ``Box`` action space the
        readout holds the squash and the bounds (``{"kind": "membrane_mean", "squash": "tanh", "low": [...],
        "high": [...]}``) and ``n_actions`` is the number of action dimensions; the reference simulation's
        ``actions`` are then the squashed actions.
        """
        scale = 1.0 / 255.0 if self.normalize_images and is_image_space(self.observation_space) else 1.0
        metadata: dict[str, Any] = {"policy": type(self).__name__, "input_scale": scale}
        if self._one_hot:
            metadata["input"] = "one_hot"
            metadata["observation_space"] = type(self.observation_space).__name__
        description = self.network.spiking_description(metadata)
        description.readout = {**description.readout, **self._readout}
        return description

    def _squash_readout(self) -> dict[str, Any]:
        """The readout entries of a Box action space (squash, low, high as lists); empty for discrete actions."""
        if not isinstance(self.action_space, spaces.Box):
            return {}
        return {"squash": self.squash, "low": [float(x) for x in self.action_space.low.reshape(-1)],
                "high": [float(x) for x in self.action_space.high.reshape(-1)]}

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
        return self.last_cost_report()

    def last_cost_report(self) -> CostReport:
        """SynOps per action and firing rates per layer over the batch of the network's last forward pass."""
        counts = {name: c.float().cpu().numpy().astype(np.float64) for name, c in self.network.last_spike_counts.items()}
        return count_operations(self.spiking_description(), counts)



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
        action_space: spaces.Space,
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

"""CVTC: a temporal-coded spiking Q-network for (Double) DQN (Wu, Liang, Luan & Wang, 2022).

The observation is population-encoded into input spike times (:class:`~sb3_snn.cvtc.PopulationEncoder`;
a ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` observation as its one-hot / bit vector, one input
neuron per bit: a 1 spikes early, ``z = 1``, a 0 late, ``z = 6``, see :meth:`PopulationEncoder.for_bits`),
passes through fully connected CVTC layers (:class:`~sb3_snn.cvtc.CVTCLinear`), and the output
neurons' spike times (z-domain) are the Q-values: ``Q = q_sign * z_out``. With ``q_sign = +1`` (the
CartPole code) the latest spike is the best action and rewards must keep Q above 1; with ``-1`` (the
MountainCar code) the earliest spike wins.

``DQN("CVTCPolicy", env)`` and ``sb3_snn.DDQN("CVTCPolicy", env)`` work after ``import sb3_snn``. Mostafa's
weight-sum regulariser (``weight_sum_reg``) is a term of the loss: :class:`sb3_snn.DDQN` adds it (it calls
:meth:`CVTCPolicy.auxiliary_loss`); with an algorithm that does not, the policy warns at the first
optimizer step instead of silently training without it.
"""

from __future__ import annotations

import warnings
from itertools import pairwise
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space, preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from sb3_snn.common.policy_io import PolicyFileMixin
from sb3_snn.cvtc.encoders import PopulationEncoder
from sb3_snn.cvtc.tuning import sample_cvtc_params
from sb3_snn.cvtc.layers import DEFAULT_BETA, CVTCLinear, spike_time
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.synops import CostReport, dense_macs

INFERENCE_MODES = ("beta", "mostafa")



#: Observation spaces encoded as one-hot / bit vectors (:meth:`PopulationEncoder.for_bits`).
BIT_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a ``ValueError`` unless CVTC can serve these spaces: a 1-D Box (population code) or a
    Discrete / MultiDiscrete / MultiBinary observation (bit code), and a Discrete action space.

    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    """
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"CVTCPolicy needs a Discrete action space (one output neuron per action), got {action_space}")
    if isinstance(observation_space, BIT_SPACES):  # a MultiBinary of any shape is flattened, as SB3's MLP does
        return
    if not isinstance(observation_space, spaces.Box) or is_image_space(observation_space, check_channels=False):
        raise ValueError(
            f"CVTCPolicy does not support the observation space {observation_space} ({type(observation_space).__name__}); "
            "supported: a low-dimensional 1-D Box (population code), Discrete, MultiDiscrete, MultiBinary (bit code); "
            "images, Dict and Tuple observations are not supported"
        )
    if len(observation_space.shape) != 1:
        raise ValueError(f"CVTCPolicy needs a 1-D Box observation, got shape {observation_space.shape}")


def build_encoder(observation_space: spaces.Space, spec: str | dict[str, Any] | None) -> PopulationEncoder:
    """The input encoder of ``observation_space``: a population code of a Box (:meth:`PopulationEncoder.build`),
    or the bit code of a Discrete / MultiDiscrete / MultiBinary observation (:meth:`PopulationEncoder.for_bits`;
    ``spec``: ``None``, ``"auto"`` or a dict of its ``z_early`` / ``z_high``).

    :param observation_space: the policy's observation space
    :param spec: the policy's ``encoder`` argument
    """
    if not isinstance(observation_space, BIT_SPACES):
        return PopulationEncoder.build(cast(spaces.Box, observation_space), spec)
    if isinstance(spec, str) and spec != "auto":
        raise ValueError(f"encoder {spec!r} is a preset for Box observations; a {type(observation_space).__name__} "
                         "observation takes the bit code (encoder=None, or a dict of z_early, z_high)")
    options = dict(spec) if isinstance(spec, dict) else {}
    return PopulationEncoder.for_bits(int(get_flattened_obs_dim(observation_space)), **options)


class CVTCQNetwork(BasePolicy):
    """Encoder + CVTC layers; outputs ``Q = q_sign * z_out`` ``[batch, n_actions]``.

    :param observation_space: 1-D Box, or Discrete / MultiDiscrete / MultiBinary (bit code)
    :param action_space: Discrete
    :param net_arch: hidden layer sizes
    :param beta: beta of every CVTC layer
    :param encoder: encoder options (see :meth:`PopulationEncoder.build`)
    :param q_sign: +1 (Q = z_out) or -1 (Q = -z_out)
    :param inference: ``"beta"`` (Eq. 9) or ``"mostafa"`` (Eq. 4, beta-free)
    :param init: weight init of the CVTC layers, ``"normal"`` or ``"xavier_uniform"``
    """

    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        net_arch: list[int],
        beta: float = DEFAULT_BETA,
        encoder: str | dict[str, Any] | None = None,
        q_sign: int = 1,
        inference: str = "beta",
        init: str = "normal",
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=None, normalize_images=False)
        self.net_arch, self.beta, self.q_sign, self.init = list(net_arch), float(beta), int(q_sign), init
        self.encoder_spec = encoder
        self.encoder = build_encoder(observation_space, encoder)
        self._bits = isinstance(observation_space, BIT_SPACES)
        sizes = [self.encoder.out_features, *self.net_arch, int(action_space.n)]
        self.layers = nn.ModuleList(CVTCLinear(n_in, n_out, beta=self.beta, init=init) for n_in, n_out in pairwise(sizes))
        self.inference = inference
        self.set_inference(inference)

    def set_inference(self, mode: str) -> None:
        """Evaluate with ``"beta"`` (Eq. 9) or ``"mostafa"`` (Eq. 4, as a chip without the beta term).

        :param mode: one of :data:`INFERENCE_MODES`
        """
        if mode not in INFERENCE_MODES:
            raise ValueError(f"unknown inference mode {mode!r}; expected one of {INFERENCE_MODES}")
        self.inference = mode
        for layer in self.cvtc_layers():
            layer.mostafa = mode == "mostafa"

    def cvtc_layers(self) -> Iterable[CVTCLinear]:
        """:attr:`layers`, typed as what they are."""
        return cast("Iterable[CVTCLinear]", self.layers)

    def to_input(self, obs: th.Tensor) -> th.Tensor:
        """Raw observations as the encoder takes them: a Box as float, a Discrete / MultiDiscrete one-hot and a
        MultiBinary as float bits (SB3's ``preprocess_obs``), ``[batch, encoder.n_dims]``.

        :param obs: a batch of raw observations
        """
        if self._bits:
            return cast(th.Tensor, preprocess_obs(obs, self.observation_space)).float().reshape(-1, self.encoder.n_dims)
        return obs.float()

    def spike_times(self, obs: PyTorchObs) -> list[th.Tensor]:
        """z-domain spike times of every population: the encoded input, then each layer's.

        :param obs: a batch of raw observations
        """
        times = [self.encoder(self.to_input(cast(th.Tensor, obs)))]
        for layer in self.layers:
            times.append(layer(times[-1]))
        return times

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values ``q_sign * z_out``.

        :param obs: a batch of observations
        """
        return self.q_sign * self.spike_times(obs)[-1]

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, beta=self.beta, encoder=self.encoder_spec, q_sign=self.q_sign,
                    inference=self.inference, init=self.init)
        return data


class CVTCPolicy(PolicyFileMixin, DQNPolicy):
    """DQN policy whose Q-network is a CVTC spiking network (online and target copies).

    :param observation_space: a 1-D Box (population code), or a Discrete, MultiDiscrete or MultiBinary
        observation (its one-hot / bit vector, one input neuron per bit: 1 spikes at ``z = 1``, 0 at ``z = 6``)
    :param action_space: a Discrete
    :param lr_schedule: learning-rate schedule
    :param net_arch: hidden layer sizes (default ``[128]``, the paper's CartPole code; the paper uses ``[800]``)
    :param beta: beta of Eq. 9 in every layer (``1e-3`` in the paper's code)
    :param encoder: ``None``/``"auto"`` (gains from the Box bounds), ``"cartpole"``, ``"mountaincar"``,
        or a dict of :class:`~sb3_snn.cvtc.PopulationEncoder` options (``{"preset": ..., **overrides}``);
        for a bit-coded observation ``None`` or a dict of ``z_early`` / ``z_high``
    :param q_sign: +1: Q = z_out (latest spike is best); -1: Q = -z_out (earliest spike is best)
    :param inference: ``"beta"`` or ``"mostafa"`` (beta-free Eq. 4) for acting and evaluation;
        training always uses Eq. 9 on the online network
    :param weight_sum_reg: K of Mostafa's regulariser K * sum_j relu(1 - sum_i w_ji), added to the loss by
        :class:`sb3_snn.DDQN` through :meth:`auxiliary_loss`; an algorithm that never calls it (plain SB3
        ``DQN``) trains without it, and the policy then warns (once, at the first optimizer step)
    :param init: ``"normal"`` (mean 1.5/n_in, sd 5/n_in) or ``"xavier_uniform"``
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: optimizer arguments besides the learning rate
    """

    # the CVTC network stands in for DQN's QNetwork (same calls: forward, _predict, set_training_mode)
    q_net: CVTCQNetwork  # type: ignore[assignment]
    q_net_target: CVTCQNetwork  # type: ignore[assignment]
    #: rl_zoo3 ``-optimize`` search space of the policy's own settings (beta, encoder, regulariser),
    #: composed with the algorithm's by :mod:`sb3_snn.zoo.samplers`
    hyperparameter_sampler = staticmethod(sample_cvtc_params)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        beta: float = DEFAULT_BETA,
        encoder: str | dict[str, Any] | None = None,
        q_sign: int = 1,
        inference: str = "beta",
        weight_sum_reg: float = 0.0,
        init: str = "normal",
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_spaces(observation_space, action_space)
        if q_sign not in (1, -1):
            raise ValueError(f"q_sign must be +1 or -1, got {q_sign}")
        if inference not in INFERENCE_MODES:
            raise ValueError(f"unknown inference mode {inference!r}; expected one of {INFERENCE_MODES}")
        if beta <= 0:
            raise ValueError(f"beta must be > 0 for training (Eq. 9), got {beta}; use inference='mostafa' for Eq. 4")
        # make_q_net (called by DQNPolicy.__init__) reads these
        self.beta, self.encoder, self.q_sign, self.inference = float(beta), encoder, int(q_sign), inference
        self.weight_sum_reg, self.init = float(weight_sum_reg), init
        super().__init__(
            observation_space,
            cast(spaces.Discrete, action_space),  # checked by check_spaces
            lr_schedule,
            net_arch=[128] if net_arch is None else list(net_arch),
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        """DQNPolicy's networks and optimizer; with ``weight_sum_reg > 0`` a hook on the optimizer's step
        that warns when the regulariser was left out of the loss (:meth:`_check_auxiliary_loss`)."""
        super()._build(lr_schedule)
        self._auxiliary_loss_used = False
        self._auxiliary_loss_warned = False
        if self.weight_sum_reg > 0:
            self.optimizer.register_step_pre_hook(self._check_auxiliary_loss)

    def _check_auxiliary_loss(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Before each optimizer step: warn once if :meth:`auxiliary_loss` was not called since the last step
        (the algorithm does not add the regulariser, so ``weight_sum_reg`` would have no effect)."""
        if not self._auxiliary_loss_used and not self._auxiliary_loss_warned:
            self._auxiliary_loss_warned = True
            warnings.warn(
                f"CVTCPolicy(weight_sum_reg={self.weight_sum_reg:g}) is not applied: the optimizer stepped without "
                "CVTCPolicy.auxiliary_loss() in the loss (plain SB3 DQN does not call it); train with sb3_snn.DDQN, "
                "or add policy.auxiliary_loss() to your algorithm's loss, or set weight_sum_reg=0",
                UserWarning,
                stacklevel=3,  # the caller of optimizer.step() (the algorithm's train)
            )
        self._auxiliary_loss_used = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling and ``copy.deepcopy``: a torch optimizer drops its hooks when copied, so the
        ``weight_sum_reg`` check is registered again on the copy's optimizer."""
        super().__setstate__(state)
        if self.weight_sum_reg > 0 and getattr(self, "optimizer", None) is not None:
            self.optimizer.register_step_pre_hook(self._check_auxiliary_loss)

    def make_q_net(self) -> CVTCQNetwork:  # type: ignore[override]  # a CVTC network in place of a QNetwork
        """A fresh CVTC Q-network (called twice: online and target)."""
        return CVTCQNetwork(
            self.observation_space,  # type: ignore[arg-type]
            self.action_space,  # type: ignore[arg-type]
            net_arch=self.net_arch,
            beta=self.beta,
            encoder=self.encoder,
            q_sign=self.q_sign,
            inference=self.inference,
            init=self.init,
        ).to(self.device)

    def set_training_mode(self, mode: bool) -> None:
        """Training uses Eq. 9 on the online network; evaluation uses ``inference``.

        :param mode: True while training
        """
        super().set_training_mode(mode)
        self.q_net.set_inference("beta" if mode else self.inference)
        self.q_net_target.set_inference("beta")  # bootstrap targets always use Eq. 9

    def set_inference(self, mode: str) -> None:
        """Switch acting and evaluation between ``"beta"`` and ``"mostafa"`` (saved with the policy).

        :param mode: one of :data:`INFERENCE_MODES`
        """
        self.q_net.set_inference(mode)
        self.inference = mode

    def auxiliary_loss(self) -> th.Tensor:
        """``weight_sum_reg * sum_layers sum_j relu(1 - sum_i w_ji)`` (Mostafa 2017), for :class:`sb3_snn.DDQN`
        (which adds it to every gradient step's loss)."""
        self._auxiliary_loss_used = True
        penalty = sum(layer.weight_sum_penalty() for layer in self.q_net.cvtc_layers())
        return self.weight_sum_reg * penalty  # type: ignore[return-value]

    def forward(self, obs: th.Tensor, deterministic: bool = True) -> th.Tensor:  # type: ignore[override]
        """Q-values ``[batch, n_actions]`` of the online network, in its current mode (``inference`` when
        acting and evaluating, Eq. 9 while training).

        :param obs: a batch of raw observations
        :param deterministic: ignored (the greedy action is ``_predict``'s)
        """
        return self.q_net(obs)

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Observations as the network's population encoder takes them (float; a Discrete / MultiDiscrete
        observation one-hot, a MultiBinary one as bits): the input of :meth:`spiking_description`, whose
        ``population_temporal`` encoding turns them into spike times.

        :param obs: raw observations
        """
        return self.q_net.to_input(obs)

    def parameter_bytes(self) -> int:
        """Bytes of the weights that act: the online Q-network's (float32: 4 per weight), not the target copy."""
        return sum(p.numel() * p.element_size() for p in self.q_net.parameters())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("activation_fn", "features_extractor_class", "features_extractor_kwargs", "normalize_images"):
            data.pop(key, None)
        data.update(beta=self.beta, encoder=self.encoder, q_sign=self.q_sign, inference=self.inference,
                    weight_sum_reg=self.weight_sum_reg, init=self.init)
        return data

    @th.no_grad()
    def spike_stats(self, obs: th.Tensor) -> dict[str, float]:
        """Figures for TensorBoard on a batch: mean output spike time (t and z), share of hidden and
        output neurons that fire only thanks to the beta term (dead under Mostafa), the Q gap between
        beta and Mostafa inference and how often they pick the same action.

        :param obs: a batch of observations
        """
        net = self.q_net
        mode = net.inference
        try:
            net.set_inference("beta")
            times = net.spike_times(obs)
            beta_only = [layer.last_info.beta_only.float().mean().item()  # type: ignore[union-attr]
                         for layer in net.cvtc_layers()]
            q_beta = net.q_sign * times[-1]
            net.set_inference("mostafa")
            q_mostafa = net(obs)
        finally:
            net.set_inference(mode)
        stats = {
            "cvtc/output_spike_time": spike_time(times[-1]).mean().item(),
            "cvtc/output_spike_z": times[-1].mean().item(),
            "cvtc/beta_only_share": float(np.mean(beta_only)),
            "cvtc/q_gap_mostafa": (q_beta - q_mostafa).abs().mean().item(),
            "cvtc/action_agreement_mostafa": (q_beta.argmax(1) == q_mostafa.argmax(1)).float().mean().item(),
        }
        for index, share in enumerate(beta_only):
            stats[f"cvtc/beta_only_share_layer{index}"] = share
        return stats

    def spiking_description(self) -> SpikingDescription:
        """The network as plain data for hardware backends (neuron model ``"temporal"``), in the policy's
        acting mode :attr:`inference`: ``"beta"`` (Eq. 9, ``params.beta`` = the training beta) or
        ``"mostafa"`` (Eq. 4, ``params.beta = 0``). Call ``set_inference("mostafa")`` first for the beta-free
        network a chip runs (backends without the beta term refuse ``beta > 0``).
        """
        inference = self.inference
        net = self.q_net
        layers = []
        for index, layer in enumerate(net.cvtc_layers()):
            params = {
                "beta": layer.beta if inference == "beta" else 0.0,
                "beta_training": layer.beta,
                "tau_syn": 1.0,
                "domain": "z",
                "spikes_per_neuron": 1,
                "z_never": layer.z_never,
            }
            layers.append(Layer(
                name=f"cvtc{index}", kind="linear", input_shape=(layer.in_features,), output_shape=(layer.out_features,),
                weight=layer.weight.detach().cpu().numpy().copy(), bias=None,
                neuron=NeuronPopulation(model="temporal", threshold=1.0, decay=1.0, reset="none", params=params),
            ))
        return SpikingDescription(
            layers=layers,
            input_shape=(net.encoder.n_dims,),
            encoding=net.encoder.describe(),
            timesteps=1,
            readout={"kind": "spike_time", "domain": "z", "q_sign": net.q_sign, "action": "argmax(q_sign * z_out)"},
            n_actions=int(net.action_space.n),
            metadata={"method": "cvtc", "inference": inference, "beta_training": self.beta,
                      "note": "event-driven time-to-first-spike network: timesteps=1 means one pass"},
        )

    @th.no_grad()
    def cost_report(self, obs: np.ndarray | th.Tensor) -> CostReport:
        """Synaptic operations per action of the event-driven network, in the acting mode :attr:`inference`,
        averaged over a batch of raw observations.

        A temporal network has no time steps: every neuron spikes at most once per action. Every input
        neuron of the population code spikes (those far from the value late, at ``z_high``); a hidden
        neuron spikes unless it never reaches threshold (possible under Mostafa's Eq. 4 only). A spike is
        delivered to every synapse it drives, so layer ``l`` receives

            SynOps_l = (presynaptic neurons that spike) x fan-out = n_spiking_inputs_l x out_features_l

        (an upper bound of the work of a chip that stops delivering to neurons that have already fired).
        ``firing_rates`` is the share of each layer's neurons that spike (spikes per neuron per action);
        ``input_macs`` is 0 (the encoder emits spikes); ``ann_macs`` is one dense pass of the same weights.

        :param obs: raw observations: a numpy observation or batch (as ``predict`` takes them), or a tensor batch
        """
        observations = obs if isinstance(obs, th.Tensor) else cast(th.Tensor, self.obs_to_tensor(obs)[0])
        net = self.q_net
        layers = cast(list[CVTCLinear], list(net.layers))
        mode = net.inference
        try:
            net.set_inference(self.inference)
            times = net.spike_times(observations.to(self.device))
            fired = [th.ones_like(times[0], dtype=th.bool)]  # every input neuron of the population code spikes
            for layer in layers:
                assert layer.last_info is not None  # set by the forward pass above
                fired.append(layer.last_info.fired)
        finally:
            net.set_inference(mode)
        per_layer: dict[str, float] = {}
        rates: dict[str, float] = {}
        for index, layer in enumerate(layers):
            name = f"cvtc{index}"
            per_layer[name] = float(fired[index].sum(dim=1).double().mean()) * layer.out_features
            rates[name] = float(fired[index + 1].double().mean())
        ann = sum(dense_macs(layer) for layer in self.spiking_description().layers)
        return CostReport(sum(per_layer.values()), per_layer, 0.0, ann, rates)

"""``ConvertedQPolicy``: a converted (normalised) ReLU Q-network run as integrate-and-fire neurons;
``ConvertedActorPolicy``: the same for the deterministic actor of a continuous-action model (TD3, DDPG,
SAC), whose readout goes through the actor's ``tanh`` and SB3's rescaling to the Box action space.

An SB3 ``BasePolicy``: ``predict`` (single and vectorised observations), ``evaluate_policy``,
``get_parameters``/``set_parameters`` work as for any SB3 policy; ``forward`` gives the readout values
(the spiking counterpart of the Q-values). ``save``/``load`` do not pickle: they write and read the policy
file format of :mod:`sb3_snn.common.policy_io` (``torch.load(weights_only=True)``).

Not trained by an algorithm: :func:`sb3_snn.convert` builds it from a trained Q-network, so it serves no
algorithm's ``policy_aliases`` (``served_algos = ()``; ``built_by`` names the converter).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

from sb3_snn.common.policy_io import PolicyFileMixin
from sb3_snn.conversion.simulation import READOUTS, IFSimulation, is_synaptic, simulate_fast
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.synops import CostReport, count_operations

#: How hidden neurons turn their integrated current into a spike count (see ``ConvertedQPolicy``).
ROUNDINGS = ("floor", "round")
#: What a :class:`ConvertedActorPolicy` applies to its readout to get an action in ``[-1, 1]``.
SQUASHES = ("tanh",)

SelfConvertedQPolicy = TypeVar("SelfConvertedQPolicy", bound="ConvertedQPolicy")


def layer_spec(layer: nn.Module) -> dict[str, Any]:
    """A JSON-able description of a ``Linear``/``Conv2d``/``Flatten`` module (no weights)."""
    if isinstance(layer, nn.Linear):
        return {"kind": "linear", "in_features": layer.in_features, "out_features": layer.out_features,
                "bias": layer.bias is not None}
    if isinstance(layer, nn.Conv2d):
        return {"kind": "conv2d", "in_channels": layer.in_channels, "out_channels": layer.out_channels,
                "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
                "padding": list(layer.padding), "bias": layer.bias is not None}
    if isinstance(layer, nn.Flatten):
        return {"kind": "flatten"}
    raise ValueError(f"no spec for {type(layer).__name__}")


def build_layer(spec: dict[str, Any]) -> nn.Module:
    """Inverse of :func:`layer_spec` (weights uninitialised)."""
    if spec["kind"] == "linear":
        return nn.Linear(spec["in_features"], spec["out_features"], bias=spec["bias"])
    if spec["kind"] == "conv2d":
        return nn.Conv2d(spec["in_channels"], spec["out_channels"], tuple(spec["kernel_size"]),
                         stride=tuple(spec["stride"]), padding=tuple(spec["padding"]), bias=spec["bias"])
    if spec["kind"] == "flatten":
        return nn.Flatten()
    raise ValueError(f"unknown layer kind {spec['kind']!r}")


class ConvertedQPolicy(PolicyFileMixin, BasePolicy):
    """Greedy policy of a ReLU Q-network converted to integrate-and-fire neurons (Tan et al. 2021).

    Every synaptic layer is followed by IF neurons (threshold ``V_thr``, no leak, reset by
    subtraction, bias added every step); the preprocessed observation is a constant analog current
    for ``timesteps`` steps; the action is the argmax of the last layer's readout.

    :param observation_space: observation space of the source model
    :param action_space: ``Discrete`` action space
    :param layer_specs: :func:`layer_spec` of every layer, in order
    :param layer_names: qualified names of the layers in the source model
    :param timesteps: simulation steps per action ``T``
    :param readout: ``"robust"`` (rate + V(T)/(T V_thr), the paper's), ``"rate"`` (spike counts / T) or
        ``"robust_hidden"`` (not the paper's: the output layer applied to ReLU of the last hidden layer's
        robust readout, i.e. that layer's leftover potential passed on as a fractional spike -- the last
        hidden layer is analog at readout time; backends that only read spikes refuse it)
    :param threshold: ``V_thr`` of every neuron
    :param rounding: ``"floor"`` (the paper's neurons) or ``"round"``: every hidden neuron gets an extra
        ``V_thr / (2T)`` of bias per step, ``V_thr / 2`` over the ``T`` steps (the charge of an initial
        membrane potential of ``V_thr / 2``), so that spike counts round instead of flooring; it is a
        bias, so the spiking description and every backend carry it
    :param scales: the normalisation factors ``lambda_l`` used (provenance)
    :param normalize_images: divide image observations by 255 (as the source did)
    :param max_chunk_elements: batch observations so that ``T * batch * neurons`` stays below this
    :param metadata: free-form provenance (source algorithm, percentile, env id, ...)
    :param carry_over: hidden neurons keep their membrane from one action to the next (not the paper's):
        ``predict(obs, state, episode_start)`` then works like an SB3 recurrent policy -- ``state`` holds the
        hidden layers' membranes per environment, ``episode_start`` zeroes an environment's membranes, and
        ``state=None`` starts from rest. What a neuron did not fire in one action is fired in the next, so
        the quantisation error of the spike counts does not pile up over an episode. The carried membranes
        are clipped at 0 from below (:meth:`carried_membranes`); the output layer starts at 0 every action
        (its robust readout is that action's mean current).
    """

    #: No algorithm trains it (``sb3-snn list`` shows ``built_by`` instead).
    served_algos: ClassVar[tuple[str, ...]] = ()
    #: What builds it.
    built_by: ClassVar[str] = "sb3_snn.convert"
    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        layer_specs: list[dict[str, Any]],
        layer_names: list[str] | None = None,
        timesteps: int = 500,
        readout: str = "robust",
        threshold: float = 1.0,
        scales: list[float] | None = None,
        normalize_images: bool = True,
        max_chunk_elements: int = 1 << 24,
        metadata: dict[str, Any] | None = None,
        rounding: str = "floor",
        carry_over: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images=normalize_images)
        self._check_readout(readout)
        if rounding not in ROUNDINGS:
            raise ValueError(f"unknown rounding {rounding!r}; expected one of {ROUNDINGS}")
        if timesteps < 1:
            raise ValueError(f"timesteps (simulation steps per action T) must be at least 1, got {timesteps}")
        self.layer_specs = [dict(spec) for spec in layer_specs]
        self.layer_names = list(layer_names) if layer_names is not None else [f"layer{i}" for i in range(len(layer_specs))]
        self.timesteps = int(timesteps)
        self.readout = readout
        self.threshold = float(threshold)
        self.rounding = rounding
        self.scales = list(scales) if scales is not None else []
        self.max_chunk_elements = int(max_chunk_elements)
        self.metadata = dict(metadata or {})
        self.carry_over = bool(carry_over)
        self.layers = nn.ModuleList(build_layer(spec) for spec in self.layer_specs)
        self._shapes = self._infer_shapes()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            layer_specs=self.layer_specs, layer_names=self.layer_names, timesteps=self.timesteps,
            readout=self.readout, threshold=self.threshold, scales=self.scales,
            max_chunk_elements=self.max_chunk_elements, metadata=self.metadata, rounding=self.rounding,
            carry_over=self.carry_over,
        )
        return data

    def _infer_shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        x = th.zeros((1, *self.input_shape()))
        shapes = []
        with th.no_grad():
            for layer in self.layers:
                y = layer(x)
                shapes.append((tuple(x.shape[1:]), tuple(y.shape[1:])))
                x = y
        return shapes

    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed observation."""
        from stable_baselines3.common.preprocessing import get_obs_shape

        if isinstance(self.observation_space, spaces.Discrete):
            return (int(self.observation_space.n),)
        return tuple(get_obs_shape(self.observation_space))  # type: ignore[arg-type]

    def with_settings(
        self: SelfConvertedQPolicy, timesteps: int | None = None, readout: str | None = None,
        rounding: str | None = None, carry_over: bool | None = None,
    ) -> SelfConvertedQPolicy:
        """A copy that simulates ``timesteps`` steps with ``readout``, ``rounding`` and ``carry_over`` (same weights).

        :param timesteps: new ``T`` (unchanged if ``None``)
        :param readout: new readout (unchanged if ``None``)
        :param rounding: new rounding (unchanged if ``None``)
        :param carry_over: keep hidden membranes between actions (unchanged if ``None``)
        """
        clone = copy.deepcopy(self)
        if carry_over is not None:
            clone.carry_over = bool(carry_over)
        if readout is not None:
            clone._check_readout(readout)
            clone.readout = readout
        if rounding is not None:
            if rounding not in ROUNDINGS:
                raise ValueError(f"unknown rounding {rounding!r}; expected one of {ROUNDINGS}")
            clone.rounding = rounding
        if timesteps is not None:
            if int(timesteps) < 1:
                raise ValueError(f"timesteps (simulation steps per action T) must be at least 1, got {timesteps}")
            clone.timesteps = int(timesteps)
        return clone

    def _check_readout(self, readout: str) -> None:
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")

    @property
    def hidden_layers(self) -> list[int]:
        """Indices of the hidden synaptic layers: the layers whose membranes ``carry_over`` keeps (in ``state`` order)."""
        synaptic = [i for i, layer in enumerate(self.layers) if is_synaptic(layer)]
        return synaptic[:-1]

    @property
    def bias_offset(self) -> float:
        """Extra current per step of every hidden neuron: ``V_thr / (2T)`` with ``rounding="round"``, else 0."""
        return self.threshold / (2 * self.timesteps) if self.rounding == "round" else 0.0

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Raw observation tensor -> the analog input current source of the first layer."""
        # a Box observation space: the preprocessed observation is one tensor
        return cast(th.Tensor, preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)).float()

    def simulate(
        self, obs: th.Tensor, dtype: th.dtype | None = None, initial_potential: dict[int, th.Tensor] | None = None
    ) -> IFSimulation:
        """Run the spiking network on a batch of raw observation tensors (chunked to bound memory).

        :param obs: ``[batch, *obs_shape]`` as ``obs_to_tensor`` returns it
        :param dtype: simulate in this dtype (e.g. ``th.float64``); default: the parameters' dtype
        :param initial_potential: per hidden layer index (:attr:`hidden_layers`), the membranes
            ``[batch, *shape]`` to start from (state carry-over); ``None``: every neuron starts at 0
        """
        x = self.preprocess(obs)
        layers: list[nn.Module] = list(self.layers)
        if dtype is not None and dtype != x.dtype:
            x = x.to(dtype)
            layers = [copy.deepcopy(layer).to(dtype) for layer in layers]
        initial = {index: v.to(x.device, x.dtype) for index, v in (initial_potential or {}).items()}
        neurons = max(int(np.prod(out)) for _, out in self._shapes)
        chunk = max(1, self.max_chunk_elements // (self.timesteps * neurons))
        parts = [
            simulate_fast(layers, x[i : i + chunk], self.timesteps, self.threshold, self.readout,
                          bias_offset=self.bias_offset,
                          initial_potential={index: v[i : i + chunk] for index, v in initial.items()})
            for i in range(0, x.shape[0], chunk)
        ]
        if len(parts) == 1:
            return parts[0]
        return IFSimulation(
            outputs=th.cat([p.outputs for p in parts]),
            spike_counts={k: th.cat([p.spike_counts[k] for p in parts]) for k in parts[0].spike_counts},
            final_potential={k: th.cat([p.final_potential[k] for p in parts]) for k in parts[0].final_potential},
            mean_current=th.cat([p.mean_current for p in parts]),
            fast_fraction={k: float(np.mean([p.fast_fraction[k] for p in parts])) for k in parts[0].fast_fraction},
        )

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """The last layer's readout ``[batch, n_actions]`` (the spiking counterpart of Q / lambda_L) of raw
        observation tensors; the greedy action is its argmax (:meth:`_predict`).

        :param obs: ``[batch, *obs_shape]`` raw observations
        """
        return self.simulate(obs).outputs

    def readout_values(self, obs: th.Tensor) -> th.Tensor:
        """The last layer's readout ``[batch, n_actions]``: :meth:`forward`.

        :param obs: ``[batch, *obs_shape]`` raw observations
        """
        return self.forward(obs)

    def _predict(self, observation: th.Tensor | dict[str, th.Tensor], deterministic: bool = True) -> th.Tensor:
        """Greedy actions ``[batch]``: ``a = argmax_a f_L(a)`` of the readout.

        :param observation: ``[batch, *obs_shape]`` raw observations
        :param deterministic: ignored (the policy is greedy)
        """
        return self.actions_of(self.forward(cast(th.Tensor, observation)))  # Box observations: a tensor

    def actions_of(self, outputs: th.Tensor) -> th.Tensor:
        """The actions :meth:`_predict` picks from readout values ``[batch, n_actions]``: their argmax.

        :param outputs: readout values, as :meth:`forward` gives them
        """
        return outputs.argmax(dim=1)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``; with ``carry_over`` it works like a recurrent policy's.

        :param observation: one observation or a batch (one per environment)
        :param state: with ``carry_over``: the membranes returned by the previous call (one array
            ``[n_envs, *shape]`` per hidden layer), ``None`` to start from rest; ignored otherwise
        :param episode_start: with ``carry_over``: ``[n_envs]`` flags of the environments that start an
            episode (their membranes are set to 0); ignored otherwise
        :param deterministic: ignored (the policy is deterministic)
        :return: the actions and, with ``carry_over``, the membranes after this action (else ``None``)
        """
        if not self.carry_over:
            return super().predict(observation, state, episode_start, deterministic)
        self.set_training_mode(False)
        obs_tensor, vectorized = self.obs_to_tensor(observation)
        obs_tensor = cast(th.Tensor, obs_tensor)  # Box (or Discrete) observations: one tensor
        initial = self.initial_potential(state, episode_start, obs_tensor.shape[0])
        with th.no_grad():
            simulation = self.simulate(obs_tensor, initial_potential=initial)
            actions = self.actions_of(simulation.outputs).cpu().numpy()
        next_state = tuple(v.cpu().numpy() for v in self.carried_membranes(simulation).values())
        actions = actions.reshape((-1, *(self.action_space.shape or ())))
        if isinstance(self.action_space, spaces.Box):
            actions = self.unscale_action(actions) if self.squash_output else np.clip(
                actions, self.action_space.low, self.action_space.high)
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, next_state

    def carried_membranes(self, simulation: IFSimulation) -> dict[int, th.Tensor]:
        """The hidden membranes the next action starts from (``carry_over``): the final ones, clipped at 0 from below.

        An IF neuron's membrane has no lower bound: a neuron driven negative during one action would carry
        that debt into the next ones and stay silent long after its input turned positive -- a memory of
        past observations the ANN's ReLU does not have (on Pendulum, unclipped carry-over made the action
        error several times worse than resetting). The positive part is this action's unfired remainder,
        the part worth passing on.

        :param simulation: the result of :meth:`simulate` for this action
        :return: per hidden layer index (:attr:`hidden_layers` order), ``max(V(T), 0)``
        """
        return {index: simulation.final_potential[index].clamp_min(0.0) for index in self.hidden_layers}

    def initial_potential(
        self, state: tuple[np.ndarray, ...] | None, episode_start: np.ndarray | None, n_envs: int
    ) -> dict[int, th.Tensor] | None:
        """The membranes a carry-over step starts from: ``state``, with the rows of ``episode_start`` zeroed.

        :param state: one array ``[n_envs, *shape]`` per hidden layer (:attr:`hidden_layers`), or ``None`` (rest)
        :param episode_start: ``[n_envs]`` flags, or ``None``
        :param n_envs: the number of observations of this step
        :raises ValueError: ``state`` does not fit the network or the batch
        """
        if state is None:
            return None
        hidden = self.hidden_layers
        shapes = [self._shapes[i][1] for i in hidden]
        if len(state) != len(hidden) or any(
                np.shape(v) != (n_envs, *shape) for v, shape in zip(state, shapes, strict=True)):
            raise ValueError(
                f"state does not fit: expected {len(hidden)} arrays of shapes "
                f"{[(n_envs, *shape) for shape in shapes]} (hidden membranes), got {[np.shape(v) for v in state]}"
            )
        keep = th.ones(n_envs, device=self.device)
        if episode_start is not None:
            keep = th.as_tensor(1.0 - np.asarray(episode_start, dtype=np.float32).reshape(-1), device=self.device)
        return {
            index: th.as_tensor(np.asarray(v), device=self.device) * keep.reshape(-1, *([1] * (np.ndim(v) - 1)))
            for index, v in zip(hidden, state, strict=True)
        }

    def parameter_bytes(self) -> int:
        """Bytes of the weights and biases of the layers (float32 as converted: 4 per parameter)."""
        return sum(p.numel() * p.element_size() for p in self.layers.parameters())

    @th.no_grad()
    def cost_report(self, obs: np.ndarray | th.Tensor) -> CostReport:
        """SynOps per action, the first layer's dense MACs (its input is an analog current) and firing rates
        per layer, on a batch of raw observations (see :func:`sb3_snn.spiking.synops.count_operations`).

        :param obs: raw observations: a numpy observation or batch (as ``predict`` takes them), or a tensor batch
        """
        observations = obs if isinstance(obs, th.Tensor) else cast(th.Tensor, self.obs_to_tensor(obs)[0])
        simulation = self.simulate(observations.to(self.device))
        return count_operations(self.spiking_description(), self.spike_counts_by_name(simulation))

    def spiking_description(self) -> SpikingDescription:
        """The network as a :class:`SpikingDescription` (IF, decay 1, subtract, analog input).

        With ``rounding="round"`` the hidden layers' biases include :attr:`bias_offset` (for this ``T``).
        """
        neuron = NeuronPopulation(model="IF", threshold=self.threshold, decay=1.0, reset="subtract")
        layers = []
        last = max(i for i, layer in enumerate(self.layers) if is_synaptic(layer))
        for index, (layer, spec, name, (in_shape, out_shape)) in enumerate(
            zip(self.layers, self.layer_specs, self.layer_names, self._shapes, strict=True)
        ):
            weight = bias = None
            if is_synaptic(layer):
                weight = layer.weight.detach().cpu().numpy().copy()
                bias = None if layer.bias is None else layer.bias.detach().cpu().numpy().copy()
                if self.bias_offset and index != last:
                    offset = np.float32(self.bias_offset) if weight.dtype == np.float32 else self.bias_offset
                    bias = (np.zeros(out_shape[0], weight.dtype) if bias is None else bias) + offset
            layers.append(Layer(
                name=name, kind=spec["kind"], input_shape=in_shape, output_shape=out_shape, weight=weight, bias=bias,
                stride=tuple(spec.get("stride", (1, 1))), padding=tuple(spec.get("padding", (0, 0))),
                neuron=copy.deepcopy(neuron) if is_synaptic(layer) else None,
            ))
        metadata = {"method": "conversion", "scales": self.scales, "rounding": self.rounding,
                    "bias_offset": self.bias_offset, **self.metadata,
                    "preprocessing": "SB3 preprocess_obs" + (" (images / 255)" if self.normalize_images else "")}
        if self.carry_over:  # the description simulates one action from rest; a runtime keeps the state
            metadata["carry_over"] = "hidden membranes persist between actions, zeroed at episode start"
        return SpikingDescription(
            layers=layers, input_shape=self.input_shape(), encoding={"kind": "analog"}, timesteps=self.timesteps,
            readout=self._readout_record(), n_actions=self._n_outputs(), metadata=metadata,
        )

    def _readout_record(self) -> dict[str, Any]:
        """The description's ``readout`` entry."""
        return {"kind": self.readout}

    def _n_outputs(self) -> int:
        """Outputs of the last layer (the description's ``n_actions``)."""
        return int(self.action_space.n)

    def spike_counts_by_name(self, simulation: IFSimulation) -> dict[str, np.ndarray]:
        """Spike counts of a :meth:`simulate` result keyed by layer name (for ``count_operations``)."""
        return {self.layer_names[i]: c.detach().cpu().numpy() for i, c in simulation.spike_counts.items()}



class ConvertedActorPolicy(ConvertedQPolicy):
    """The deterministic actor of a TD3 / DDPG / SAC model converted to integrate-and-fire neurons.

    The network and its neurons are those of :class:`ConvertedQPolicy`; the last layer's readout estimates
    the actor's pre-activation (the robust readout is that layer's time-averaged input current, and
    :func:`sb3_snn.convert` leaves the output layer unnormalised, ``lambda_L = 1``), and the action is what
    the teacher does with it: ``tanh``, then SB3's rescaling to ``[low, high]`` (``predict``, through
    ``unscale_action``, as for every SB3 policy with ``squash_output``).

    ``forward`` gives the readout (the action means before the squash), ``_predict`` the squashed action in
    ``[-1, 1]`` and ``predict`` the action in the space. The readout must be signed: ``"rate"`` (spike
    counts / T, never negative) is refused.

    :param observation_space: observation space of the source model
    :param action_space: the bounded 1-D ``Box`` action space of the source model
    :param layer_specs: :func:`layer_spec` of every layer, in order
    :param layer_names: qualified names of the layers in the source model
    :param timesteps: simulation steps per action ``T``
    :param readout: ``"robust"`` (the paper's) or ``"robust_hidden"`` (see :class:`ConvertedQPolicy`)
    :param threshold: ``V_thr`` of every neuron
    :param scales: the normalisation factors ``lambda_l`` used (provenance; the last is 1)
    :param normalize_images: divide image observations by 255 (as the source did)
    :param max_chunk_elements: batch observations so that ``T * batch * neurons`` stays below this
    :param metadata: free-form provenance
    :param rounding: ``"floor"`` or ``"round"`` (see :class:`ConvertedQPolicy`)
    :param carry_over: keep hidden membranes between actions (see :class:`ConvertedQPolicy`)
    :param squash: the function from readout to ``[-1, 1]`` (one of :data:`SQUASHES`: the actor's ``tanh``)
    """

    action_space: spaces.Box  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        layer_specs: list[dict[str, Any]],
        layer_names: list[str] | None = None,
        timesteps: int = 500,
        readout: str = "robust",
        threshold: float = 1.0,
        scales: list[float] | None = None,
        normalize_images: bool = True,
        max_chunk_elements: int = 1 << 24,
        metadata: dict[str, Any] | None = None,
        rounding: str = "floor",
        carry_over: bool = False,
        squash: str = "tanh",
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1 or not (
                np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(f"ConvertedActorPolicy needs a bounded 1-D Box action space, got {action_space}")
        if squash not in SQUASHES:
            raise ValueError(f"unknown squash {squash!r}; expected one of {SQUASHES}")
        super().__init__(
            observation_space, action_space, layer_specs, layer_names=layer_names, timesteps=timesteps,  # type: ignore[arg-type]
            readout=readout, threshold=threshold, scales=scales, normalize_images=normalize_images,
            max_chunk_elements=max_chunk_elements, metadata=metadata, rounding=rounding, carry_over=carry_over,
        )
        self.squash = squash
        self._squash_output = True  # SB3's predict rescales [-1, 1] to [low, high] (unscale_action)
        n_out = int(np.prod(self._shapes[-1][1]))
        if n_out != action_space.shape[0]:
            raise ValueError(f"the last layer has {n_out} outputs, the action space {action_space.shape[0]} dimensions")

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(squash=self.squash)
        return data

    def _check_readout(self, readout: str) -> None:
        super()._check_readout(readout)
        if readout == "rate":
            raise ValueError(
                "a converted continuous actor needs a signed readout of its pre-activation ('robust' or "
                "'robust_hidden'); 'rate' (spike counts / T) is never negative"
            )

    def actions_of(self, outputs: th.Tensor) -> th.Tensor:
        """Squashed actions ``[batch, action_dim]`` in ``[-1, 1]``: ``tanh`` of the readout (as the teacher's actor).

        :param outputs: readout values, as :meth:`forward` gives them
        """
        return th.tanh(outputs)

    def _readout_record(self) -> dict[str, Any]:
        """The readout, then the squash and SB3's rescaling: ``a = low + (tanh(f) + 1)(high - low) / 2``."""
        return {"kind": self.readout, "squash": self.squash, "low": self.action_space.low.tolist(),
                "high": self.action_space.high.tolist()}

    def _n_outputs(self) -> int:
        return int(self.action_space.shape[0])

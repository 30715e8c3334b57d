"""``ConvertedQPolicy``: a converted (normalised) ReLU Q-network run as integrate-and-fire neurons.

An SB3 ``BasePolicy``: ``predict`` (single and vectorised observations), ``evaluate_policy``,
``get_parameters``/``set_parameters`` work as for any SB3 policy; ``forward`` gives the readout values
(the spiking counterpart of the Q-values). ``save``/``load`` do not pickle: they write and read the policy
file format of :mod:`sb3_snn.common.policy_io` (``torch.load(weights_only=True)``).

Not trained by an algorithm: :func:`sb3_snn.convert` builds it from a trained Q-network, so it serves no
algorithm's ``policy_aliases`` (``served_algos = ()``; ``built_by`` names the converter).
"""

from __future__ import annotations

import copy
import os
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

from sb3_snn.common.policy_io import load_policy, save_policy
from sb3_snn.conversion.simulation import READOUTS, IFSimulation, is_synaptic, simulate_fast
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.synops import CostReport, count_operations

#: How hidden neurons turn their integrated current into a spike count (see ``ConvertedQPolicy``).
ROUNDINGS = ("floor", "round")

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


class ConvertedQPolicy(BasePolicy):
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
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images=normalize_images)
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
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
        self.layers = nn.ModuleList(build_layer(spec) for spec in self.layer_specs)
        self._shapes = self._infer_shapes()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            layer_specs=self.layer_specs, layer_names=self.layer_names, timesteps=self.timesteps,
            readout=self.readout, threshold=self.threshold, scales=self.scales,
            max_chunk_elements=self.max_chunk_elements, metadata=self.metadata, rounding=self.rounding,
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
        self, timesteps: int | None = None, readout: str | None = None, rounding: str | None = None
    ) -> ConvertedQPolicy:
        """A copy that simulates ``timesteps`` steps with ``readout`` and ``rounding`` (same weights).

        :param timesteps: new ``T`` (unchanged if ``None``)
        :param readout: new readout (unchanged if ``None``)
        :param rounding: new rounding (unchanged if ``None``)
        """
        clone = copy.deepcopy(self)
        if readout is not None:
            if readout not in READOUTS:
                raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
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

    @property
    def bias_offset(self) -> float:
        """Extra current per step of every hidden neuron: ``V_thr / (2T)`` with ``rounding="round"``, else 0."""
        return self.threshold / (2 * self.timesteps) if self.rounding == "round" else 0.0

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Raw observation tensor -> the analog input current source of the first layer."""
        # a Box observation space: the preprocessed observation is one tensor
        return cast(th.Tensor, preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)).float()

    def simulate(self, obs: th.Tensor, dtype: th.dtype | None = None) -> IFSimulation:
        """Run the spiking network on a batch of raw observation tensors (chunked to bound memory).

        :param obs: ``[batch, *obs_shape]`` as ``obs_to_tensor`` returns it
        :param dtype: simulate in this dtype (e.g. ``th.float64``); default: the parameters' dtype
        """
        x = self.preprocess(obs)
        layers: list[nn.Module] = list(self.layers)
        if dtype is not None and dtype != x.dtype:
            x = x.to(dtype)
            layers = [copy.deepcopy(layer).to(dtype) for layer in layers]
        neurons = max(int(np.prod(out)) for _, out in self._shapes)
        chunk = max(1, self.max_chunk_elements // (self.timesteps * neurons))
        parts = [
            simulate_fast(layers, x[i : i + chunk], self.timesteps, self.threshold, self.readout,
                          bias_offset=self.bias_offset)
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
        return self.forward(cast(th.Tensor, observation)).argmax(dim=1)  # Box observations: a tensor

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
        return SpikingDescription(
            layers=layers, input_shape=self.input_shape(), encoding={"kind": "analog"}, timesteps=self.timesteps,
            readout={"kind": self.readout}, n_actions=int(self.action_space.n), metadata=metadata,
        )

    def spike_counts_by_name(self, simulation: IFSimulation) -> dict[str, np.ndarray]:
        """Spike counts of a :meth:`simulate` result keyed by layer name (for ``count_operations``)."""
        return {self.layer_names[i]: c.detach().cpu().numpy() for i, c in simulation.spike_counts.items()}

    def save(self, path: str | os.PathLike) -> None:
        """Write the policy (constructor arguments and weights, no pickle) in the format of
        :mod:`sb3_snn.common.policy_io`; :meth:`load` reads it back.

        :param path: the file to write (``.pt`` by convention)
        """
        save_policy(self, path)

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfConvertedQPolicy], path: str | os.PathLike, device: th.device | str = "auto"
    ) -> SelfConvertedQPolicy:
        """Read a policy written by :meth:`save` (``torch.load(..., weights_only=True)``: no pickle).

        :param path: the file written by :meth:`save`
        :param device: torch device (``"auto"``: CUDA when available)
        """
        return load_policy(cls, path, device)

"""Reading the ReLU network behind an SB3 Q-learning model (or a discrete actor) as a flat layer list.

Supported sources: ``DQN``/``DDQN`` (``DQNPolicy``, ``QNetwork``), ``QRDQN`` (``QRDQNPolicy``,
``QuantileNetwork``: the mean over quantiles is folded into the last layer, it is linear) and
discrete ``ActorCriticPolicy`` (PPO/A2C: features extractor + ``policy_net`` + ``action_net``; the
greedy action is the argmax of the logits). Feature extractors: ``FlattenExtractor`` and
``NatureCNN`` (anything made of ``Conv2d``/``Linear``/``ReLU``/``Flatten``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

from sb3_snn.common.models import acting_network
from sb3_snn.common.observations import preprocess_observations
from sb3_snn.spiking.contract import is_spiking_policy

#: Leaf modules the conversion understands.
SUPPORTED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout)


@dataclass
class SourceNetwork:
    """The ANN to convert, as a flat list of synaptic and flatten layers (ReLU implied after every
    synaptic layer but the last).

    :param layers: deep copies of the ``Linear``/``Conv2d``/``Flatten`` modules, in order
    :param names: the qualified module name of every layer (errors and the description use them)
    :param observation_space: what the network observes (channel-first for images)
    :param action_space: a ``Discrete`` space
    :param normalize_images: whether image observations are divided by 255 first
    :param kind: ``"q"`` (DQN/DDQN), ``"quantile"`` (QR-DQN, mean folded in) or ``"actor"``
    """

    layers: list[nn.Module]
    names: list[str]
    observation_space: spaces.Space
    action_space: spaces.Discrete
    normalize_images: bool
    kind: str

    def preprocess(self, obs: np.ndarray | th.Tensor, device: th.device | str = "cpu") -> th.Tensor:
        """Raw (vectorised) observations -> the float input the first layer sees."""
        return preprocess_observations(obs, self.observation_space, self.normalize_images, device)

    def q_values(self, x: th.Tensor) -> th.Tensor:
        """The ANN's outputs on preprocessed input ``x`` (ReLU after all but the last layer)."""
        from sb3_snn.conversion.normalisation import layer_activations

        return layer_activations(self.layers, x)[-1]


def _leaves(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    children = list(module.named_children())
    if not children:
        return [] if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) else [(prefix, module)]
    leaves = []
    for name, child in children:
        leaves += _leaves(child, f"{prefix}.{name}" if prefix else name)
    return leaves


def _check_leaf(name: str, module: nn.Module) -> None:
    if not isinstance(module, SUPPORTED):
        raise ValueError(
            f"layer {name!r} ({type(module).__name__}) cannot be converted to integrate-and-fire neurons; "
            f"supported layers: {', '.join(cls.__name__ for cls in SUPPORTED)}"
        )
    if isinstance(module, nn.Conv2d):
        if (module.groups != 1 or module.dilation != (1, 1) or module.padding_mode != "zeros"
                or isinstance(module.padding, str)):
            raise ValueError(f"layer {name!r} (Conv2d): only groups=1, dilation=1, numeric zero padding are supported")
    if isinstance(module, nn.Flatten) and (module.start_dim != 1 or module.end_dim != -1):
        raise ValueError(f"layer {name!r} (Flatten): only start_dim=1, end_dim=-1 is supported")


def _sequence(parts: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    leaves: list[tuple[str, nn.Module]] = []
    for prefix, module in parts:
        leaves += _leaves(module, prefix)
    for name, module in leaves:
        _check_leaf(name, module)
    return [(n, m) for n, m in leaves if not isinstance(m, (nn.Identity, nn.Dropout))]


def _to_layers(leaves: list[tuple[str, nn.Module]]) -> tuple[list[nn.Module], list[str]]:
    """Drop the ReLUs after checking that every synaptic layer but the last is followed by one."""
    synaptic = [i for i, (_, m) in enumerate(leaves) if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not synaptic:
        raise ValueError("the network has no Linear or Conv2d layer to convert")
    layers, names = [], []
    for i, (name, module) in enumerate(leaves):
        if isinstance(module, nn.ReLU):
            if i == 0 or not isinstance(leaves[i - 1][1], (nn.Linear, nn.Conv2d)):
                raise ValueError(f"layer {name!r} (ReLU) does not follow a Linear/Conv2d layer")
            if i - 1 == synaptic[-1]:
                raise ValueError(f"layer {name!r} (ReLU) after the output layer: Q-values must be linear")
            continue
        if isinstance(module, (nn.Linear, nn.Conv2d)) and i != synaptic[-1]:
            following = leaves[i + 1][1] if i + 1 < len(leaves) else None
            if not isinstance(following, nn.ReLU):
                raise ValueError(
                    f"layer {name!r} ({type(module).__name__}) is not followed by a ReLU: "
                    "an IF neuron can only represent non-negative activations"
                )
        layers.append(copy.deepcopy(module).float().cpu())
        names.append(name)
    return layers, names


def extract_network(source: Any) -> SourceNetwork:
    """Find the ReLU network behind ``source`` (an SB3 algorithm, its policy or its Q-network).

    :param source: ``DQN``/``DDQN``/``QRDQN``/``PPO``/``A2C`` model, ``DQNPolicy``, ``QRDQNPolicy``,
        ``QNetwork``, ``QuantileNetwork`` or a discrete ``ActorCriticPolicy``
    :raises ValueError: unsupported model, action space or layer (the layer is named)
    """
    policy = getattr(source, "policy", source)
    action_space = getattr(policy, "action_space", None)
    if action_space is not None and not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            "conversion needs a Q-network or actor with Discrete actions (DQN, DDQN, QR-DQN, PPO, A2C); got "
            f"{type(source).__name__} ({type(action_space).__name__} actions {action_space})"
        )
    if is_spiking_policy(policy):
        raise ValueError(
            f"cannot convert {type(source).__name__}: its policy {type(policy).__name__} is already a spiking network, "
            "not an ANN; export it directly (sb3-snn export, or policy.spiking_description())"
        )
    try:
        acting = acting_network(source)
    except TypeError:
        acting = None
    if acting is None or acting.kind == "policy":
        raise ValueError(
            f"cannot convert {type(source).__name__}: expected a DQN/DDQN/QR-DQN model or policy, "
            "or a discrete actor-critic policy"
        )
    module: Any = acting.policy
    kind, parts = acting.kind, acting.modules
    if not isinstance(module.action_space, spaces.Discrete):
        raise ValueError(f"conversion needs a Discrete action space, got {module.action_space}")
    if isinstance(module.observation_space, (spaces.Dict, spaces.Tuple)):
        raise ValueError(f"conversion needs a single (non-dict) observation space, got {module.observation_space}")
    layers, names = _to_layers(_sequence(parts))
    if kind == "quantile":
        _fold_quantile_mean(layers[-1], module.n_quantiles, int(module.action_space.n))
    return SourceNetwork(
        layers=layers,
        names=names,
        observation_space=module.observation_space,
        action_space=module.action_space,
        normalize_images=bool(module.normalize_images),
        kind=kind,
    )


def _fold_quantile_mean(last: nn.Module, n_quantiles: int, n_actions: int) -> None:
    """Replace a QR-DQN output layer (``n_quantiles * n_actions`` outputs, viewed as
    ``[n_quantiles, n_actions]``) by the mean over quantiles: linear, so it folds into W and b."""
    if not isinstance(last, nn.Linear):
        raise ValueError("QR-DQN output layer must be Linear")
    with th.no_grad():
        weight = last.weight.view(n_quantiles, n_actions, -1).mean(dim=0)  # Q(a) = 1/N sum_i theta_i(a)
        bias = last.bias.view(n_quantiles, n_actions).mean(dim=0) if last.bias is not None else None
    last.weight = nn.Parameter(weight.clone())
    last.out_features = n_actions
    if bias is not None:
        last.bias = nn.Parameter(bias.clone())

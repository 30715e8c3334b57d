"""Reading the ReLU network behind an SB3 model as a flat layer list.

Supported sources: ``DQN``/``DDQN`` (``DQNPolicy``, ``QNetwork``), ``QRDQN`` (``QRDQNPolicy``,
``QuantileNetwork``: the mean over quantiles is folded into the last layer, it is linear),
discrete ``ActorCriticPolicy`` (PPO/A2C: features extractor + ``policy_net`` + ``action_net``; the
greedy action is the argmax of the logits) and the deterministic actors of continuous-action models
(``TD3``/``DDPG``: ``actor.mu`` ending in ``Tanh``; ``SAC``: ``latent_pi`` then ``mu``, whose
deterministic action is ``tanh`` of ``mu``): the ``tanh`` is kept aside as the network's ``squash``, the
rest must be a ReLU network. Feature extractors: ``FlattenExtractor`` and ``NatureCNN`` (anything made
of ``Conv2d``/``Linear``/``ReLU``/``Flatten``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

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
    :param action_space: a ``Discrete`` space, or a ``Box`` for a continuous actor
    :param normalize_images: whether image observations are divided by 255 first
    :param kind: ``"q"`` (DQN/DDQN), ``"quantile"`` (QR-DQN, mean folded in), ``"actor"`` (PPO/A2C) or
        ``"continuous_actor"`` (TD3/DDPG/SAC)
    :param squash: what the source applies to the last layer's output to get an action in ``[-1, 1]``
        before SB3 rescales it to ``[low, high]`` (``"tanh"``); ``None`` for ``Discrete`` actions
    """

    layers: list[nn.Module]
    names: list[str]
    observation_space: spaces.Space
    action_space: spaces.Discrete | spaces.Box
    normalize_images: bool
    kind: str
    squash: str | None = None

    def preprocess(self, obs: np.ndarray | th.Tensor, device: th.device | str = "cpu") -> th.Tensor:
        """Raw (vectorised) observations -> the float input the first layer sees."""
        return preprocess_observations(obs, self.observation_space, self.normalize_images, device)

    def q_values(self, x: th.Tensor) -> th.Tensor:
        """The ANN's outputs on preprocessed input ``x`` (ReLU after all but the last layer)."""
        from sb3_snn.conversion.normalisation import layer_activations

        return layer_activations(self.layers, x)[-1]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The source's greedy actions for a batch of raw observations: the argmax of its outputs
        (``Discrete``), or its deterministic action squashed and rescaled to ``[low, high]`` (``Box``)."""
        with th.no_grad():
            out = self.q_values(self.preprocess(obs))
        if self.squash is None:
            return out.argmax(dim=1).numpy()
        return unscale_actions(th.tanh(out).numpy(), cast(spaces.Box, self.action_space))


def unscale_actions(actions: np.ndarray, space: spaces.Box) -> np.ndarray:
    """``[-1, 1]`` -> ``[low, high]``, as SB3's ``BasePolicy.unscale_action``: ``low + (a + 1)(high - low) / 2``.

    :param actions: squashed actions ``[batch, *shape]``
    :param space: the Box action space
    """
    return space.low + (0.5 * (actions + 1.0) * (space.high - space.low))


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

    :param source: ``DQN``/``DDQN``/``QRDQN``/``PPO``/``A2C``/``TD3``/``DDPG``/``SAC`` model, ``DQNPolicy``,
        ``QRDQNPolicy``, ``QNetwork``, ``QuantileNetwork``, a discrete ``ActorCriticPolicy``, ``TD3Policy``,
        ``SACPolicy`` or their ``Actor``
    :raises ValueError: unsupported model, action space or layer (the layer is named)
    """
    policy = getattr(source, "policy", source)
    if is_spiking_policy(policy):
        raise ValueError(
            f"cannot convert {type(source).__name__}: its policy {type(policy).__name__} is already a spiking network, "
            "not an ANN; export it directly (sb3-snn export, or policy.spiking_description())"
        )
    actor = _continuous_actor(policy)
    if actor is not None:
        return _extract_continuous_actor(source, actor)
    action_space = getattr(policy, "action_space", None)
    if action_space is not None and not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            "conversion needs a Q-network or actor with Discrete actions (DQN, DDQN, QR-DQN, PPO, A2C) or the "
            f"deterministic actor of TD3, DDPG or SAC; got {type(source).__name__} "
            f"({type(action_space).__name__} actions {action_space})"
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


def _continuous_actor(policy: Any) -> nn.Module | None:
    """The deterministic actor of a TD3/DDPG/SAC policy (or the actor itself), else ``None``."""
    actor = getattr(policy, "actor", policy)
    if isinstance(actor, nn.Module) and isinstance(getattr(actor, "mu", None), nn.Module) and isinstance(
            getattr(actor, "action_space", None), spaces.Box):
        return actor
    return None


def _extract_continuous_actor(source: Any, actor: Any) -> SourceNetwork:
    """TD3/DDPG (``features_extractor``, ``mu`` = MLP ending in ``Tanh``) or SAC (``features_extractor``,
    ``latent_pi``, ``mu``; deterministic action ``tanh(mu)``): the ReLU network up to the pre-``tanh`` output."""
    space = actor.action_space
    if len(space.shape) != 1 or not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"conversion of a continuous actor needs a bounded 1-D Box action space, got {space}")
    if isinstance(actor.observation_space, (spaces.Dict, spaces.Tuple)):
        raise ValueError(f"conversion needs a single (non-dict) observation space, got {actor.observation_space}")
    if hasattr(actor, "latent_pi"):  # SAC: mu is the mean of a tanh-squashed Gaussian
        if getattr(actor, "use_sde", False):
            raise ValueError(
                f"cannot convert {type(source).__name__}: a SAC actor with gSDE (use_sde=True) clips its mean with "
                "Hardtanh before the tanh; only the plain SAC actor (use_sde=False) is supported"
            )
        parts = [("actor.features_extractor", actor.features_extractor), ("actor.latent_pi", actor.latent_pi),
                 ("actor.mu", actor.mu)]
        leaves = _sequence(parts)
    else:  # TD3 / DDPG: mu ends with the Tanh
        leaves = [leaf for prefix, module in [("actor.features_extractor", actor.features_extractor),
                                              ("actor.mu", actor.mu)] for leaf in _leaves(module, prefix)]
        if not leaves or not isinstance(leaves[-1][1], nn.Tanh):
            raise ValueError(
                f"cannot convert {type(source).__name__}: its actor's last layer is "
                f"{type(leaves[-1][1]).__name__ if leaves else 'missing'}, not the Tanh a TD3/DDPG actor ends with"
            )
        leaves = _sequence(leaves[:-1])
    layers, names = _to_layers(leaves)
    return SourceNetwork(
        layers=layers, names=names, observation_space=actor.observation_space, action_space=space,
        normalize_images=bool(actor.normalize_images), kind="continuous_actor", squash="tanh",
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

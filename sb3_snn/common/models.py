"""Any trained SB3 model, seen the same way by every method: which network acts, its scores, its size, loading.

- :func:`acting_network`: the part of a policy that computes the action (a DQN's online Q-network,
  not its target; an actor-critic's actor, not its critic), its kind and the scores it gives;
- :func:`acting_scores`: those scores ``[batch, n_actions]`` for raw observations (Q-values, the
  mean of QR-DQN's quantiles, an actor's normalised logits, a spiking policy's ``forward``);
- :func:`parameter_bytes`: the bytes of the acting parameters (a spiking policy's own figure);
- :func:`greedy_actions`: an agent (anything with SB3's ``predict``, or a function) as a function from
  a batch of raw observations to its greedy actions;
- :func:`load_model`: an SB3 zip of a known or inferred algorithm, ready to act, read without running
  code from the file (:mod:`sb3_snn.common.safe_zip`) unless ``trusted=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import ConstantSchedule
from torch import nn

from sb3_snn.common.safe_zip import (
    algorithm_table,
    load_algorithm,
    read_model_zip,
    rebuild_policy_class,
    resolve_model_path,
)
from sb3_snn.spiking.contract import is_spiking_policy

__all__ = [
    "KINDS",
    "ActingNetwork",
    "acting_modules",
    "acting_network",
    "acting_scores",
    "action_squash",
    "algorithm_table",
    "greedy_actions",
    "infer_algorithm",
    "load_model",
    "parameter_bytes",
    "resolve_model_path",
]

#: Kinds of :class:`ActingNetwork`.
KINDS = ("q", "quantile", "actor", "deterministic_actor", "policy")


@dataclass
class ActingNetwork:
    """The part of a policy that computes the action.

    :param kind: ``"q"`` (a Q-network: DQN, DDQN, CVTC), ``"quantile"`` (QR-DQN: Q is the mean of the
        quantiles), ``"actor"`` (an actor-critic's actor: features, ``policy_net``, ``action_net``),
        ``"deterministic_actor"`` (the actor of SAC, TD3 or DDPG: its scores are the deterministic action
        before the ``tanh`` squash) or ``"policy"`` (anything else, a spiking policy say: the whole policy
        acts, its ``forward`` gives scores)
    :param policy: the policy (or the bare Q-network) it belongs to
    :param modules: ``(qualified name, module)`` in execution order; their parameters are the acting ones
    """

    kind: str
    policy: Any
    modules: list[tuple[str, nn.Module]]

    def parameters(self) -> list[nn.Parameter]:
        """The acting parameters, each once (a features extractor shared by two parts counts once)."""
        seen: dict[int, nn.Parameter] = {}
        for _, module in self.modules:
            for parameter in module.parameters():
                seen.setdefault(id(parameter), parameter)
        return list(seen.values())

    def scores(self, obs: th.Tensor) -> th.Tensor:
        """Scores ``[batch, n_actions]`` of raw observations, on the policy's device (with gradients, if enabled).

        :param obs: a batch of raw observations as ``obs_to_tensor`` makes them
        """
        policy = self.policy
        if self.kind == "q":
            return policy.q_net(obs) if _is_q_policy(policy) else policy(obs)
        if self.kind == "quantile":
            network = policy.quantile_net if hasattr(policy.quantile_net, "quantile_net") else policy
            return network(obs).mean(dim=1)  # [batch, n_quantiles, n_actions] -> Q (mean of the quantiles)
        if self.kind == "actor":
            features = policy.extract_features(obs, policy.pi_features_extractor)
            scores = policy.action_net(policy.mlp_extractor.forward_actor(features))
            if isinstance(policy.action_space, spaces.Discrete):
                # what a Categorical distribution stores: logits normalised to log-probabilities
                return scores - scores.logsumexp(dim=-1, keepdim=True)
            return scores  # a Box: the action means (SB3's predict clips them, see action_squash)
        if self.kind == "deterministic_actor":
            return _pre_squash_action(policy.actor, obs)
        return policy(obs)


def _policy_of(agent: Any) -> Any:
    policy = agent.policy if isinstance(agent, BaseAlgorithm) else agent
    if not isinstance(policy, nn.Module):
        raise TypeError(f"expected an SB3 model, a policy or a network, got {type(agent).__name__}")
    return policy


def _is_q_policy(module: Any) -> bool:
    """A policy holding a Q-network (``DQNPolicy``, ``CVTCPolicy``), as opposed to the Q-network itself."""
    return isinstance(getattr(module, "q_net", None), nn.Module) and not isinstance(module.q_net, nn.Sequential)


def acting_network(agent: Any) -> ActingNetwork:
    """The network that computes ``agent``'s action.

    :param agent: an SB3 model, its policy, or a bare ``QNetwork`` / ``QuantileNetwork``
    """
    policy = _policy_of(agent)
    quantile = getattr(policy, "quantile_net", None)
    if isinstance(quantile, nn.Module):  # QRDQNPolicy -> QuantileNetwork, or the QuantileNetwork itself
        network: Any = quantile if hasattr(quantile, "quantile_net") else policy
        parts = [("features_extractor", network.features_extractor), ("quantile_net", network.quantile_net)]
        return ActingNetwork("quantile", policy, parts)
    q_net = getattr(policy, "q_net", None)
    if isinstance(q_net, nn.Module):
        network = q_net if _is_q_policy(policy) else policy  # DQNPolicy -> QNetwork, or the QNetwork itself
        if isinstance(getattr(network, "q_net", None), nn.Sequential):  # SB3's QNetwork: features + MLP
            return ActingNetwork("q", policy, [("features_extractor", network.features_extractor), ("q_net", network.q_net)])
        return ActingNetwork("q", policy, [("q_net", network)])  # a Q-network of its own kind (CVTC)
    if isinstance(policy, ActorCriticPolicy):
        modules: list[tuple[str, Any]] = [("pi_features_extractor", policy.pi_features_extractor),
                   ("mlp_extractor.policy_net", policy.mlp_extractor.policy_net), ("action_net", policy.action_net)]
        return ActingNetwork("actor", policy, modules)
    actor = getattr(policy, "actor", None)
    if isinstance(actor, nn.Module) and isinstance(getattr(actor, "mu", None), nn.Module):
        # SAC / TD3 / DDPG: the actor's mean path, not the critics (nor SAC's log-std head: a deterministic
        # action does not use it)
        latent = [("actor.latent_pi", actor.latent_pi)] if isinstance(getattr(actor, "latent_pi", None), nn.Module) else []
        parts = [("actor.features_extractor", actor.features_extractor), *latent, ("actor.mu", actor.mu)]
        return ActingNetwork("deterministic_actor", policy, parts)
    if isinstance(actor, nn.Module):  # another actor-critic with an actor module: the actor, not the critics
        return ActingNetwork("policy", policy, [("actor", actor)])
    return ActingNetwork("policy", policy, [("", policy)])


def acting_modules(agent: Any) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of the network that acts (see :func:`acting_network`).

    :param agent: an SB3 model, its policy, or a bare Q-network
    """
    return acting_network(agent).modules


@th.no_grad()
def acting_scores(agent: Any, obs: th.Tensor) -> th.Tensor:
    """Action scores ``[batch, n_actions]`` for raw observations, in evaluation mode, on the device of ``obs``.

    Q-values for DQN / DDQN / CVTC, the mean of the quantiles for QR-DQN, the normalised logits of the
    categorical distribution for PPO / A2C (the Gaussian means for a Box action space), the deterministic
    action before its ``tanh`` for SAC / TD3 / DDPG (:func:`action_squash` says how either becomes an
    action), ``forward`` for a spiking policy.

    :param agent: an SB3 model or its policy
    :param obs: a batch of raw (unpreprocessed) observations
    """
    network = acting_network(agent)
    policy = network.policy
    if hasattr(policy, "set_training_mode"):
        policy.set_training_mode(False)
    device = getattr(policy, "device", th.device("cpu"))
    return network.scores(obs.to(device)).float().to(obs.device)


def _pre_squash_action(actor: nn.Module, obs: th.Tensor) -> th.Tensor:
    """The deterministic action of a SAC or TD3/DDPG actor before its ``tanh``: SAC's Gaussian mean
    (``get_action_dist_params``; its deterministic action is ``tanh`` of it), TD3's ``mu`` without its
    final ``nn.Tanh``."""
    get_params = getattr(actor, "get_action_dist_params", None)
    if callable(get_params):  # SAC
        return get_params(obs)[0]
    mu = actor.mu
    if not isinstance(mu, nn.Sequential) or not isinstance(mu[-1], nn.Tanh):
        raise TypeError(f"{type(actor).__name__}.mu does not end with nn.Tanh: cannot read its pre-squash action")
    features = actor.extract_features(obs, actor.features_extractor)  # type: ignore[operator]
    return mu[:-1](features)


def action_squash(agent: Any) -> str | None:
    """How ``agent``'s policy turns the scores of :func:`acting_scores` into actions of its Box action space,
    as SB3's ``predict`` does: ``"tanh"`` (SAC, TD3, DDPG, and actor-critics built with ``squash_output``:
    ``action = low + (tanh(score) + 1) / 2 * (high - low)``, SB3's ``unscale_action``) or ``"clip"``
    (PPO / A2C: the Gaussian mean clipped to ``[low, high]``); ``None`` for a discrete action space.

    :param agent: an SB3 model or its policy
    :raises TypeError: a Box policy whose squash is unknown (not an actor-critic, SAC, TD3 or DDPG)
    """
    policy = _policy_of(agent)
    if not isinstance(policy.action_space, spaces.Box):
        return None
    kind = acting_network(policy).kind
    if kind == "deterministic_actor":
        return "tanh"
    if kind == "actor":
        return "tanh" if getattr(policy, "squash_output", False) else "clip"
    raise TypeError(f"{type(policy).__name__}: unknown squash of a Box action policy; expected an actor-critic "
                    "(PPO, A2C), SAC, TD3 or DDPG policy")


def parameter_bytes(agent: Any) -> int:
    """Bytes of the parameters that act, as stored: a DQN's target network and an actor-critic's value
    head are left out; a spiking policy gives its own figure (:meth:`SpikingPolicy.parameter_bytes`).

    :param agent: an SB3 model, its policy, or a bare network
    """
    policy = _policy_of(agent)
    if is_spiking_policy(policy):
        return int(policy.parameter_bytes())
    return sum(p.numel() * p.element_size() for p in acting_network(policy).parameters())


def greedy_actions(agent: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``agent`` as a function from a batch of raw observations to its greedy actions (a flat array).

    :param agent: anything with SB3's ``predict`` (a model, a policy), or already such a function
    """
    predict = getattr(agent, "predict", None)
    if callable(predict):
        return lambda obs: np.asarray(predict(obs, deterministic=True)[0]).reshape(-1)
    if callable(agent):
        return lambda obs: np.asarray(agent(obs)).reshape(-1)
    raise TypeError(f"{type(agent).__name__} cannot act: give a model or policy with predict(), or a function of observations")


def infer_algorithm(policy_class: Any, data: dict[str, Any], table: dict[str, type[BaseAlgorithm]]) -> str:
    """The algorithm id that saved a model, from its saved policy class.

    A QR-DQN policy is ``qrdqn``; a DQN policy ``dqn`` (DDQN and CVTC models differ from DQN in training
    only, and load as DQN to act); an actor-critic ``ppo`` if its data has PPO's ``clip_range``, else
    ``a2c``; a TD3 policy ``td3`` (DDPG's too: it acts the same); anything else (an SDN student, say) the
    one algorithm of ``table`` whose ``policy_aliases`` hold that class.

    :param policy_class: the ``policy_class`` of the zip's data
    :param data: the zip's data (its saved attributes)
    :param table: algorithm id -> class (:func:`algorithm_table`)
    :raises ValueError: no algorithm, or more than one, serves that policy class (pass ``algo``)
    """
    from sb3_contrib.qrdqn.policies import QRDQNPolicy
    from stable_baselines3.dqn.policies import DQNPolicy
    from stable_baselines3.td3.policies import TD3Policy

    if not isinstance(policy_class, type):
        raise ValueError(f"the saved policy class is {policy_class!r}, not a class; "
                         f"pass algo= (known: {', '.join(sorted(table))})")
    if issubclass(policy_class, QRDQNPolicy):
        return "qrdqn"
    if issubclass(policy_class, DQNPolicy):
        return "dqn"
    if issubclass(policy_class, ActorCriticPolicy):
        return "ppo" if "clip_range" in data else "a2c"
    if issubclass(policy_class, TD3Policy):  # DDPG is TD3 with other training settings: it acts the same
        return "td3"
    for test in (lambda alias: alias is policy_class, lambda alias: issubclass(policy_class, alias)):
        serving = sorted({name for name, algo in table.items()
                          if any(isinstance(alias, type) and test(alias)
                                 for alias in getattr(algo, "policy_aliases", {}).values())})
        if len(serving) == 1:
            return serving[0]
        if serving:
            raise ValueError(f"policy class {policy_class.__name__} is served by {', '.join(serving)}: pass algo= one of them")
    raise ValueError(f"no known algorithm serves policy class {policy_class.__name__}; pass algo= "
                     f"(known: {', '.join(sorted(table))})")


def load_model(
    path: str | Path,
    algo: str | None = None,
    env: Any = None,
    device: th.device | str = "cpu",
    trusted: bool = False,
    **kwargs: Any,
) -> BaseAlgorithm:
    """Load an SB3 model zip to act with it, without running code from the file unless ``trusted``.

    The one entry point for reading a model zip someone else may have written (teachers, ``--model-path``,
    zoo experiments, pipeline stages): the zip's pickled entries are rebuilt from their readable keys
    (:mod:`sb3_snn.common.safe_zip`), never unpickled; the weights are read with ``weights_only=True``.
    Off-policy models get a one-transition replay buffer (acting needs none, and a saved buffer size can
    be millions); the learning-rate and clip-range schedules are replaced by constants (acting does not
    use them).

    :param path: the zip written by ``model.save`` (or rl_zoo3), with or without ``.zip``
    :param algo: the algorithm id (:func:`algorithm_table`: ``dqn``, ``ddqn``, ``qrdqn``, ``ppo``,
        ``a2c``, ``sdn``, ...); ``None``: inferred from the saved policy class (:func:`infer_algorithm`)
    :param env: the environment to attach (``None``: none); its spaces must match the saved ones
    :param device: torch device of the model
    :param trusted: load with SB3's own loader, which unpickles the file's entries and so runs any code
        they hold: only for files you wrote or whose author you trust (CLI: ``--trust-pickle``)
    :param kwargs: further attributes for ``BaseAlgorithm.load`` (``seed``, ...)
    :raises FileNotFoundError: no such file
    :raises ValueError: the file is not an SB3 model zip, ``algo`` is not a known algorithm id (the
        message lists the known ones), the algorithm cannot be told from the file, or the file's policy
        is not one ``algo`` uses
    :raises sb3_snn.common.safe_zip.UnsafeEntryError: an entry cannot be rebuilt safely (named)
    """
    model_zip = read_model_zip(path)
    table = algorithm_table()
    if algo is None:
        if trusted:
            data, _, _ = load_from_zip_file(model_zip.path, device="cpu", load_data=True)
            policy_class = (data or {}).get("policy_class")
        else:
            policy_class = rebuild_policy_class(model_zip.data.get("policy_class"), model_zip.path)
        algo = infer_algorithm(policy_class, model_zip.data, table)
    if algo not in table:
        raise ValueError(f"unknown algorithm {algo!r}; known: {', '.join(sorted(table))}")
    algo_class = table[algo]
    if issubclass(algo_class, OffPolicyAlgorithm):
        kwargs.setdefault("buffer_size", 1)
    constant = {"learning_rate": 0.0, "lr_schedule": ConstantSchedule(0.0), "clip_range": ConstantSchedule(0.0),
                "optimize_memory_usage": False}
    return load_algorithm(algo_class, model_zip.path, env=env, device=device, custom_objects=constant,
                          trusted=trusted, **kwargs)

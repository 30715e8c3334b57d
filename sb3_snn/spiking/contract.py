"""The contract every spiking policy of sb3-snn meets, whatever method built it.

Backends, the pipeline and the command line are typed against :class:`SpikingPolicy`; they never ask
which method a policy came from. A spiking policy is an SB3 ``BasePolicy`` subclass that also:

- ``forward(obs)`` returns scores ``[batch, n_actions]`` (logits or Q-values) of raw observations;
  ``_predict(obs)`` returns the greedy actions, and SB3's ``predict`` takes one observation or a batch;
- ``preprocess(obs)`` turns raw observations into what the network's first layer takes (the input of
  its :class:`~sb3_snn.spiking.description.SpikingDescription`);
- ``spiking_description()`` (no arguments: the policy knows its own inference mode) describes the
  network as plain data, and the reference simulation of that description on ``preprocess(obs)``
  picks the same actions as ``predict``;
- ``parameter_bytes()`` is the size of the parameters that act (float32 as stored);
- ``cost_report(obs)`` gives SynOps and firing rates per action on a batch of raw observations;
- it saves and loads with SB3's ``save`` / ``load`` (policy files: ``th.save`` of its constructor
  arguments and weights, read back with ``weights_only=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch as th
    from gymnasium import spaces

    from sb3_snn.spiking.description import SpikingDescription
    from sb3_snn.spiking.synops import CostReport


@runtime_checkable
class SpikingPolicy(Protocol):
    """What every spiking policy provides (see the module docstring for the meaning of each)."""

    observation_space: spaces.Space
    action_space: spaces.Space

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Scores ``[batch, n_actions]`` (logits or Q-values) of a batch of raw observations."""
        ...

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``: the action of one observation, or the actions of a batch."""
        ...

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Raw observations as the spiking description's first layer takes them."""
        ...

    def spiking_description(self) -> SpikingDescription:
        """The network as plain data, in the policy's own inference mode."""
        ...

    def parameter_bytes(self) -> int:
        """Bytes of the parameters that act."""
        ...

    def cost_report(self, obs: Any) -> CostReport:
        """SynOps and firing rates per action over a batch of raw observations."""
        ...


def is_spiking_policy(obj: Any) -> bool:
    """Whether ``obj`` meets :class:`SpikingPolicy` (has every method of the contract).

    :param obj: a policy, a model or anything else
    """
    return isinstance(obj, SpikingPolicy)


def spiking_policy_of(agent: Any) -> SpikingPolicy:
    """The spiking policy of ``agent``: the agent itself, or its ``policy`` (an SB3 model).

    :param agent: a spiking policy or an SB3 model whose policy is one
    :raises TypeError: neither is a spiking policy (the message says what was given)
    """
    for candidate in (agent, getattr(agent, "policy", None)):
        if candidate is not None and is_spiking_policy(candidate):
            return candidate
    raise TypeError(
        f"{type(agent).__name__} is not a spiking policy and has none: it lacks the SpikingPolicy contract "
        "(spiking_description, preprocess, parameter_bytes, cost_report); convert an ANN first (sb3-snn convert)"
    )

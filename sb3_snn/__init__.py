"""sb3-snn: spiking neural network policies for Stable-Baselines3.

Importing the package adds every registered spiking policy to the ``policy_aliases`` of the
algorithms it serves, so ``DQN("CVTCPolicy", env)`` works in plain SB3 code.
"""

from sb3_snn.ddqn import DDQN
from sb3_snn.sdn import SDN, DistillationCallback, SDNCnnPolicy, SDNPolicy
from sb3_snn.conversion import ConvertedActorPolicy, ConvertedQPolicy, convert
from sb3_snn.cvtc import CVTCLinear, CVTCPolicy
from sb3_snn.spiking.contract import SpikingPolicy
from sb3_snn import registry

__version__ = "0.1.0"

__all__ = [
    "DDQN",
    "SDN",
    "CVTCLinear",
    "CVTCPolicy",
    "ConvertedActorPolicy",
    "ConvertedQPolicy",
    "DistillationCallback",
    "SDNCnnPolicy",
    "SDNPolicy",
    "SpikingPolicy",
    "__version__",
    "convert",
    "registry",
]

registry.register_policy_aliases()

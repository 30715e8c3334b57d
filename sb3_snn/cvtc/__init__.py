"""CVTC: temporal-coded spiking Q-networks for DQN and Double DQN."""

from sb3_snn.cvtc.callbacks import CVTCStatsCallback
from sb3_snn.cvtc.policies import CVTCPolicy, CVTCQNetwork

__all__ = ["CVTCPolicy", "CVTCQNetwork", "CVTCStatsCallback"]

"""CVTC: temporal-coded spiking Q-networks for DQN and Double DQN (Wu et al. 2022, after Mostafa 2017).

:class:`CVTCLinear` is the temporal-coded layer, :class:`PopulationEncoder` turns observations into
input spike times, :class:`CVTCPolicy` is the Q-network policy that DQN and DDQN train.
"""

from sb3_snn.cvtc.callbacks import CVTCStatsCallback
from sb3_snn.cvtc.encoders import ENCODER_PRESETS, PopulationEncoder
from sb3_snn.cvtc.layers import DEFAULT_BETA, CVTCInfo, CVTCLinear, cvtc_spike_times, default_z_never, spike_time
from sb3_snn.cvtc.policies import CVTCPolicy, CVTCQNetwork

__all__ = [
    "DEFAULT_BETA", "ENCODER_PRESETS", "CVTCInfo", "CVTCLinear", "CVTCPolicy", "CVTCQNetwork", "CVTCStatsCallback",
    "PopulationEncoder", "cvtc_spike_times", "default_z_never", "spike_time",
]

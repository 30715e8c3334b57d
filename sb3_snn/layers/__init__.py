"""Building blocks shared by the spiking methods: temporal-coded layers and input encoders."""

from sb3_snn.layers.cvtc import DEFAULT_BETA, CVTCInfo, CVTCLinear, cvtc_spike_times, default_z_never, spike_time
from sb3_snn.layers.encoders import ENCODER_PRESETS, PopulationEncoder

__all__ = [
    "DEFAULT_BETA",
    "ENCODER_PRESETS",
    "CVTCInfo",
    "CVTCLinear",
    "PopulationEncoder",
    "cvtc_spike_times",
    "default_z_never",
    "spike_time",
]

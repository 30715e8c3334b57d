"""DQN -> spiking network conversion (Tan, Patel & Kozma, AAAI 2021): integrate-and-fire neurons,
percentile normalisation, robust readout, fast simulation, conversion rate and T sweeps; the same for
the deterministic actors of TD3 / DDPG / SAC (Box actions, optional membrane carry-over)."""

from sb3_snn.conversion.convert import collect_calibration_frames, convert
from sb3_snn.conversion.extract import SourceNetwork, extract_network
from sb3_snn.conversion.normalisation import StreamingPercentile, global_percentile
from sb3_snn.conversion.policies import ConvertedActorPolicy, ConvertedQPolicy
from sb3_snn.conversion.simulation import IFSimulation, simulate_fast, simulate_reference

__all__ = [
    "ConvertedActorPolicy", "ConvertedQPolicy", "IFSimulation", "SourceNetwork", "StreamingPercentile",
    "collect_calibration_frames", "convert", "extract_network", "global_percentile", "simulate_fast", "simulate_reference",
]

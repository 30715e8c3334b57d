"""The spiking description (the hand-off to hardware), its reference simulation and op counting."""

from sb3_snn.spiking.contract import SpikingPolicy, is_spiking_policy, spiking_policy_of
from sb3_snn.spiking.description import Layer, NeuronPopulation, SpikingDescription
from sb3_snn.spiking.simulate import SimulationResult, simulate
from sb3_snn.spiking.synops import CostReport, count_operations, dense_macs, fan_out

# time-to-first-spike (temporal) networks: the exact reference simulate() uses for them
from sb3_snn.spiking.temporal import encode_population, simulate_temporal

__all__ = [
    "CostReport", "Layer", "NeuronPopulation", "SimulationResult", "SpikingDescription", "SpikingPolicy",
    "count_operations", "dense_macs", "encode_population", "fan_out", "is_spiking_policy", "simulate",
    "simulate_temporal", "spiking_policy_of",
]

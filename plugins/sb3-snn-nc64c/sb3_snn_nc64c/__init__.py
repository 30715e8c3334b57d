"""sb3-snn backend plugin ``nc64c``: a parameterised model of the PKU NC64C neuromorphic chip.

Check (:mod:`.check`), map (:mod:`.mapping`), quantise (:mod:`.quantize`), simulate in integers
(:mod:`.simulate`), estimate cost (:mod:`.energy`), build and save (:mod:`.deployment`); every step is a
function usable alone. Beta-free CVTC (time-to-first-spike) networks run as current-based neurons on a
time grid (:mod:`.temporal`). Imports only :mod:`sb3_snn.backends` and :mod:`sb3_snn.spiking`.
"""

from sb3_snn_nc64c.check import FitReport, check_fit, fit_report
from sb3_snn_nc64c.deployment import NC64CBackend, NC64CDeployment
from sb3_snn_nc64c.energy import EnergyEstimate, estimate
from sb3_snn_nc64c.mapping import Mapping, map_network, plan_layer
from sb3_snn_nc64c.quantize import QuantizedNetwork, quantize_network
from sb3_snn_nc64c.simulate import IntegerResult, simulate_integer
from sb3_snn_nc64c.spec import PROVENANCE, ChipSpec
from sb3_snn_nc64c.temporal import (
    TemporalDeployment,
    TemporalNetwork,
    quantize_temporal,
    simulate_temporal_grid,
    simulate_temporal_integer,
)

__all__ = [
    "PROVENANCE", "ChipSpec", "EnergyEstimate", "FitReport", "IntegerResult", "Mapping", "NC64CBackend",
    "NC64CDeployment", "QuantizedNetwork", "TemporalDeployment", "TemporalNetwork", "check_fit", "estimate",
    "fit_report", "map_network", "plan_layer", "quantize_network", "quantize_temporal", "simulate_integer",
    "simulate_temporal_grid", "simulate_temporal_integer",
]

"""A parameterised model of the PKU NC64C chip: what is public is labelled *fact*, the rest *assumption*.

Public (SDN paper; Peking University): 64 programmable cores, 65 nm digital, LIF neurons, AER spike
routing between cores, a compressed synaptic weight format, a feature-patch mapping method, and a
measured 0.103 W for the SDN student. Everything else (core sizes, bit widths, leak format, clock,
energies) is not public: the defaults below come from comparable chips (PAICORE, Tianjic, Loihi,
TrueNorth; Horowitz 2014 for the MAC energy) and every report prints that they are assumptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

FACT, ASSUMPTION = "fact", "assumption"
INPUT_ENCODINGS = ("sigma_delta", "hold")

#: parameter -> (fact | assumption, source / reason)
PROVENANCE: dict[str, tuple[str, str]] = {
    "n_cores": (FACT, "64 programmable cores (SDN paper; PKU NC64C)"),
    "neurons_per_core": (ASSUMPTION, "PAICORE: 512 neurons per core in SNN mode"),
    "axons_per_core": (ASSUMPTION, "PAICORE: fan-in of 1152 axons per core (a core is an axons x neurons crossbar)"),
    "weight_bits": (ASSUMPTION, "NC64C's 'scheme for weights of higher precision' (details not public), modelled as "
                    "16-bit weights (e.g. two 8-bit slices; PAICORE: 1/2/4/8 bits): 8 bits gives 0.93 agreement on a "
                    "converted CartPole DQN and 0.92 on an SDN student, 16 bits >= 0.99 (docs/hardware.md)"),
    "membrane_bits": (ASSUMPTION, "PAICORE: 30-bit signed membrane"),
    "weight_shift_bits": (ASSUMPTION, "Loihi: a weight mantissa enters the membrane scaled by 2^(6 + exponent) and the "
                          "threshold is a per-neuron mantissa x 2^6, so membrane, threshold and bias keep 6 bits "
                          "below the weight LSB; NC64C's 'scheme for weights of higher precision' is not public"),
    "input_bits": (ASSUMPTION, "analog observations quantised to 12-bit signed integers by the board (CPU + FPGA); "
                   "8 bits costs 1-5 % agreement on the CartPole policies (docs/hardware.md)"),
    "input_encoding": (ASSUMPTION, "the board (CPU + FPGA) feeds each step's integer input with the previous steps' "
                       "rounding error carried over (first-order sigma-delta), so T steps sum to the input within "
                       "one LSB; 'hold' repeats the rounded value"),
    "leak_bits": (ASSUMPTION, "multiplicative leak v <- (v * d) >> leak_bits with a 12-bit d (Loihi's decay is a 12-bit "
                  "fraction); NC64C's leak format is not public "
                  "(PAICORE's additive leak cannot express a proportional decay)"),
    "reset_modes": (ASSUMPTION, "PAICORE: hard (to a value) and soft (subtract threshold) reset"),
    "clock_mhz": (ASSUMPTION, "typical of digital neuromorphic cores (Tianjic 300 MHz; TrueNorth asynchronous)"),
    "ops_per_cycle": (ASSUMPTION, "one synaptic operation or neuron update per core per clock cycle"),
    "min_timestep_us": (ASSUMPTION, "a time step is never shorter than this (global synchronisation)"),
    "energy_per_synop_pj": (ASSUMPTION,
                            "Loihi (Davies 2018): 23.6 pJ per synaptic operation (TrueNorth 26 pJ; Tianjic 1.54 pJ)"),
    "energy_per_neuron_update_pj": (ASSUMPTION, "Loihi (Davies 2018): 81 pJ per neuron update"),
    "energy_per_spike_hop_pj": (ASSUMPTION, "Loihi (Davies 2018): 1.7-4 pJ per spike hop (upper value)"),
    "energy_per_input_mac_pj": (ASSUMPTION, "Horowitz 2014 (45 nm): 8-bit multiply 0.2 pJ + add 0.03 pJ"),
    "static_power_w": (ASSUMPTION, "leakage and board power are not modelled (0 W); the measured 0.103 W includes them"),
}


@dataclass(frozen=True)
class ChipSpec:
    """The chip's resources, number formats, timing and energy: every field is a parameter.

    :param n_cores: cores on the chip
    :param neurons_per_core: neurons one core holds
    :param axons_per_core: distinct inputs (axons) one core receives: the fan-in limit of a neuron
    :param weight_bits: signed weight width
    :param membrane_bits: signed membrane (and threshold, bias) width; the membrane saturates
    :param weight_shift_bits: weights are added to the membrane shifted left by up to this many bits (chosen
        per neuron), so the per-neuron threshold, the bias and the membrane resolve finer than one weight step
    :param input_bits: signed width of analog inputs (observations fed as currents)
    :param input_encoding: how the board turns a scaled observation into per-step integers: ``"sigma_delta"``
        (rounding error carried to the next step) or ``"hold"`` (the rounded value every step)
    :param leak_bits: fraction bits of the multiplicative decay ``d`` (``v <- (v * d) >> leak_bits``)
    :param reset_modes: resets the neurons support (``"subtract"``, ``"zero"``)
    :param clock_mhz: core clock
    :param ops_per_cycle: synaptic operations (or neuron updates) per core per cycle
    :param min_timestep_us: shortest time step
    :param energy_per_synop_pj: energy of one synaptic operation
    :param energy_per_neuron_update_pj: energy of one neuron update (one neuron, one step)
    :param energy_per_spike_hop_pj: energy of routing one spike packet to one core
    :param energy_per_input_mac_pj: energy of one multiply-accumulate of an analog input
    :param static_power_w: static (leakage + board) power added to the dynamic power
    """

    n_cores: int = 64
    neurons_per_core: int = 512
    axons_per_core: int = 1152
    weight_bits: int = 16
    membrane_bits: int = 30
    weight_shift_bits: int = 6
    input_bits: int = 12
    input_encoding: str = "sigma_delta"
    leak_bits: int = 12
    reset_modes: tuple[str, ...] = ("subtract", "zero")
    clock_mhz: float = 100.0
    ops_per_cycle: int = 1
    min_timestep_us: float = 1.0
    energy_per_synop_pj: float = 23.6
    energy_per_neuron_update_pj: float = 81.0
    energy_per_spike_hop_pj: float = 4.0
    energy_per_input_mac_pj: float = 0.23
    static_power_w: float = 0.0
    name: str = "NC64C"

    def __post_init__(self) -> None:
        object.__setattr__(self, "reset_modes", tuple(self.reset_modes))
        for key in ("n_cores", "neurons_per_core", "axons_per_core", "ops_per_cycle"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"ChipSpec.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("weight_bits", "membrane_bits", "input_bits"):
            if not 2 <= int(getattr(self, key)) <= 62:
                raise ValueError(f"ChipSpec.{key} must be in 2..62, got {getattr(self, key)}")
        if self.input_encoding not in INPUT_ENCODINGS:
            raise ValueError(f"ChipSpec.input_encoding must be one of {INPUT_ENCODINGS}, got {self.input_encoding!r}")
        if not 0 <= self.weight_shift_bits <= 24:
            raise ValueError(f"ChipSpec.weight_shift_bits must be in 0..24, got {self.weight_shift_bits}")
        if not 0 <= self.leak_bits <= 30:
            raise ValueError(f"ChipSpec.leak_bits must be in 0..30, got {self.leak_bits}")
        if self.membrane_bits + self.leak_bits > 62:
            raise ValueError("ChipSpec: membrane_bits + leak_bits must be <= 62 (the leak product is simulated in int64)")

    def with_overrides(self, **overrides: Any) -> ChipSpec:
        """A copy with some parameters changed (unknown names raise ``TypeError``)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown ChipSpec parameters {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-compatible)."""
        data = asdict(self)
        data["reset_modes"] = list(self.reset_modes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChipSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    def provenance_rows(self) -> list[list[Any]]:
        """``[parameter, value, fact|assumption, source]`` rows, a changed default marked ``user``."""
        default = ChipSpec()
        rows = []
        for key, (label, source) in PROVENANCE.items():
            value = getattr(self, key)
            if value != getattr(default, key):
                label, source = "user", f"set by the user (default {getattr(default, key)}; {source})"
            rows.append([key, ", ".join(value) if isinstance(value, tuple) else value, label, source])
        return rows

    @property
    def weight_max(self) -> int:
        """Largest weight magnitude (symmetric signed range)."""
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def membrane_range(self) -> tuple[int, int]:
        """Smallest and largest membrane value."""
        return -(2 ** (self.membrane_bits - 1)), 2 ** (self.membrane_bits - 1) - 1

    @property
    def input_max(self) -> int:
        """Largest analog input magnitude."""
        return 2 ** (self.input_bits - 1) - 1

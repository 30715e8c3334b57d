"""A parameterised model of the PKU NC64C chip; every default says where it comes from.

The SDN paper (Zhang et al., arXiv:2108.10078) names the chip it deployed its student to (PKU-NC64C)
and reports the chip's measured power for that student (0.103 W); it states no other figure of the chip.
So each :class:`ChipSpec` default carries a :class:`Provenance` (:data:`PROVENANCE`) with one of three
labels: ``fact`` (stated by a named source), ``inference`` (read from the chip's name: 64 cores from
"NC64C") or ``assumption`` (taken from a named comparable chip -- PAICORE, Loihi, Tianjic, TrueNorth --
or Horowitz's 45 nm energy table, with the public figure it rests on; or a modelling choice where no
comparable figure is used, said as such). Every report prints the table; ``docs/hardware.md`` renders it
(``plugins/sb3-snn-nc64c/scripts/render_docs.py``, checked by a test).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

FACT, INFERENCE, ASSUMPTION = "fact", "inference", "assumption"
#: The provenance labels, strongest first.
LABELS = (FACT, INFERENCE, ASSUMPTION)
INPUT_ENCODINGS = ("sigma_delta", "hold")
#: The only public source that names the chip.
SDN_PAPER = "SDN paper (Zhang et al., arXiv:2108.10078)"
PAICORE = "PAICORE (Peking University; PAIBox toolchain)"
LOIHI = "Loihi (Davies et al., IEEE Micro 2018)"
HOROWITZ = "Horowitz, ISSCC 2014 (45 nm)"
#: The source of an assumption that rests on no comparable chip's figure.
MODEL_CHOICE = "modelling choice (no comparable-chip figure)"
#: Horowitz 2014 (45 nm): an 8-bit integer multiply costs 0.2 pJ and a 32-bit one 3.1 pJ (about the ratio of
#: the operand-width products, 16), an 8-bit add 0.03 pJ and a 32-bit add 0.1 pJ (about linear in the width).
HOROWITZ_INT8_MULT_PJ, HOROWITZ_INT32_ADD_PJ = 0.2, 0.1


class Provenance(NamedTuple):
    """Where one spec value comes from.

    :param label: ``fact`` (stated by ``source``), ``inference`` (read from the chip's name) or
        ``assumption`` (from a named comparable chip or study, or a modelling choice)
    :param source: the named source (a paper, a chip, or :data:`MODEL_CHOICE`)
    :param basis: the public figure the value rests on, and how the value follows from it
    """

    label: str
    source: str
    basis: str = ""


#: parameter -> its provenance as written (a plain ``(label, source)`` pair is read as a :class:`Provenance`)
_ENTRIES: dict[str, Provenance | tuple[str, str]] = {
    "n_cores": Provenance(INFERENCE, "the chip's name, NC64C",
                          "'64C' read as 64 cores; the SDN paper names the chip but states no core count"),
    "neurons_per_core": Provenance(ASSUMPTION, PAICORE, "512 neurons per core in SNN mode"),
    "axons_per_core": Provenance(ASSUMPTION, PAICORE,
                                 "fan-in of 1152 axons per core (a core is an axons x neurons crossbar)"),
    "weight_bits": Provenance(ASSUMPTION, PAICORE,
                              "weights of 1, 2, 4 or 8 bits; modelled as two 8-bit slices per weight (16 bits), "
                              "since 8 bits misses the 99 % agreement target (bit-width sweep, docs/hardware.md)"),
    "membrane_bits": Provenance(ASSUMPTION, PAICORE, "30-bit signed membrane"),
    "weight_shift_bits": Provenance(ASSUMPTION, LOIHI,
                                    "a weight mantissa enters the membrane scaled by 2^(6 + exponent) and the "
                                    "threshold is a per-neuron mantissa x 2^6, so membrane, threshold and bias keep "
                                    "6 bits below the weight LSB"),
    "input_bits": Provenance(ASSUMPTION, MODEL_CHOICE,
                             "the host (CPU + FPGA) quantises analog observations to 12-bit signed integers; "
                             "8 bits costs agreement (bit-width sweep, docs/hardware.md)"),
    "input_encoding": Provenance(ASSUMPTION, MODEL_CHOICE,
                                 "the host feeds each step's integer input with the previous steps' rounding error "
                                 "carried over (first-order sigma-delta), so T steps sum to the input within one "
                                 "LSB; 'hold' repeats the rounded value"),
    "leak_bits": Provenance(ASSUMPTION, LOIHI,
                            "the current and voltage decays are 12-bit fractions; modelled as v <- (v * d) >> 12 "
                            "(PAICORE's additive leak cannot express a proportional decay)"),
    "reset_modes": Provenance(ASSUMPTION, PAICORE, "hard (to a value) and soft (subtract the threshold) reset"),
    "clock_mhz": Provenance(ASSUMPTION, MODEL_CHOICE, "a round 100 MHz for a digital core; it sets latency only"),
    "ops_per_cycle": Provenance(ASSUMPTION, MODEL_CHOICE,
                                "one synaptic operation or neuron update per core per clock cycle"),
    "min_timestep_us": Provenance(ASSUMPTION, MODEL_CHOICE,
                                  "a time step is never shorter than this (global synchronisation)"),
    "energy_per_synop_pj": Provenance(ASSUMPTION, LOIHI,
                                      "23.6 pJ per synaptic operation (TrueNorth 26 pJ, Tianjic 1.54 pJ)"),
    "energy_per_neuron_update_pj": Provenance(ASSUMPTION, LOIHI, "81 pJ per active neuron update"),
    "energy_per_spike_hop_pj": Provenance(ASSUMPTION, LOIHI, "1.7-4 pJ per spike hop; the upper value"),
    "energy_per_input_mac_pj": Provenance(
        ASSUMPTION, HOROWITZ,
        "unset (None): priced at the actual widths, an input_bits x weight_bits multiply (8-bit: 0.2 pJ, scaled by "
        "the product of the widths / 64) plus a membrane_bits add (32-bit: 0.1 pJ, scaled linearly)"),
    "static_power_w": Provenance(ASSUMPTION, MODEL_CHOICE,
                                 "leakage and board power are not modelled (0 W); the SDN paper's measured 0.103 W "
                                 "includes them"),
    "name": Provenance(FACT, SDN_PAPER, "names the chip its student ran on: PKU-NC64C"),
    "synaptic_current": Provenance(ASSUMPTION, LOIHI,
                                   "a current-based neuron: a synaptic current decayed by a 12-bit factor and a "
                                   "membrane that integrates it; NC64C's neuron is public only as LIF"),
    "temporal_dt": Provenance(ASSUMPTION, MODEL_CHOICE,
                              "the time step of a temporal (CVTC) network in units of its synaptic time constant: "
                              "the coarsest step reaching >= 99 % agreement with the float beta-free CartPole "
                              "policy (benchmarks/bench_nc64c_cvtc.py)"),
}
#: parameter -> its provenance
PROVENANCE: dict[str, Provenance] = {key: Provenance(*entry) for key, entry in _ENTRIES.items()}

#: What public sources state about the chip beyond the spec's fields: name -> (value, provenance).
PUBLISHED_FACTS: dict[str, tuple[str, Provenance]] = {
    "measured power of the SDN student on the chip": (
        "0.103 W", Provenance(FACT, SDN_PAPER, "measured, whole chip; a measurement, not an output of this model")),
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
    :param energy_per_input_mac_pj: energy of one multiply-accumulate of an analog input; ``None`` (default):
        priced at the actual input, weight and membrane widths (:attr:`input_mac_energy_pj`)
    :param static_power_w: static (leakage + board) power added to the dynamic power
    :param synaptic_current: neurons have a decaying synaptic-current register beside the membrane (needed by
        temporal, time-to-first-spike networks; its decay has ``leak_bits`` fraction bits)
    :param temporal_dt: time step of a temporal network, in units of its synaptic time constant
        (:mod:`sb3_snn_nc64c.temporal`)
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
    energy_per_input_mac_pj: float | None = None
    static_power_w: float = 0.0
    synaptic_current: bool = True
    temporal_dt: float = 0.002
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
        if not (math.isfinite(self.temporal_dt) and 0.0 < self.temporal_dt <= 1.0):
            raise ValueError(f"ChipSpec.temporal_dt must be in (0, 1] (units of the synaptic time constant), "
                             f"got {self.temporal_dt}")
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

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Per field, in field order: ``{"value", "label", "source", "basis"}`` (JSON-compatible); a value
        that differs from the default is labelled ``user`` and keeps the default's provenance beside it.

        :raises KeyError: a field without an entry in :data:`PROVENANCE`
        """
        default = ChipSpec()
        table: dict[str, dict[str, Any]] = {}
        for item in fields(self):
            entry = PROVENANCE[item.name]
            value = getattr(self, item.name)
            record = {"value": list(value) if isinstance(value, tuple) else value, **entry._asdict()}
            if value != getattr(default, item.name):
                record.update(label="user", default=getattr(default, item.name))
            table[item.name] = record
        return table

    def provenance_rows(self) -> list[list[Any]]:
        """``[parameter, value, fact|inference|assumption, source]`` rows, a changed default marked ``user``."""
        rows = []
        for key, record in self.provenance().items():
            source = f"{record['source']}: {record['basis']}" if record["basis"] else record["source"]
            if record["label"] == "user":
                source = f"set by the user (default {record['default']}; {source})"
            value = record["value"]
            if key == "energy_per_input_mac_pj" and value is None:
                value = f"{self.input_mac_energy_pj:.3g} (from the widths)"
            rows.append([key, ", ".join(value) if isinstance(value, list) else value, record["label"], source])
        return rows

    @property
    def input_mac_energy_pj(self) -> float:
        """Energy of one analog-input multiply-accumulate: ``energy_per_input_mac_pj`` where set, else an
        ``input_bits x weight_bits`` integer multiply plus a ``membrane_bits`` add, scaled from Horowitz's 45 nm
        figures (a multiplier's energy grows with the product of its operand widths, an adder's with its width)."""
        if self.energy_per_input_mac_pj is not None:
            return float(self.energy_per_input_mac_pj)
        multiply = HOROWITZ_INT8_MULT_PJ * self.input_bits * self.weight_bits / 64
        return multiply + HOROWITZ_INT32_ADD_PJ * self.membrane_bits / 32

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

#: Name and version of the saved deployment format (``deployment.json`` + ``arrays.npz`` + ``description/``).
FORMAT = "sb3-snn/nc64c-deployment"
FORMAT_VERSION = 1

"""The fit check reports the whole network's need, not only the first resource that runs out."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_snn_nc64c import ChipSpec, check_fit, fit_report

from sb3_snn.backends import FitError, Layer, NeuronPopulation, SpikingDescription


def _nature_cnn() -> SpikingDescription:
    """SB3's NatureCNN on 4 x 84 x 84 Atari frames with 6 actions (Pong), zero weights: only shapes matter."""

    def layer(name, kind, shape_in, shape_out, weight, stride=(1, 1)):
        return Layer(
            name,
            kind,
            shape_in,
            shape_out,
            np.zeros(weight),
            np.zeros(weight[0]),
            stride=stride,
            neuron=NeuronPopulation("IF", threshold=1.0, reset="subtract"),
        )

    layers = [
        layer("conv0", "conv2d", (4, 84, 84), (32, 20, 20), (32, 4, 8, 8), (4, 4)),
        layer("conv1", "conv2d", (32, 20, 20), (64, 9, 9), (64, 32, 4, 4), (2, 2)),
        layer("conv2", "conv2d", (64, 9, 9), (64, 7, 7), (64, 64, 3, 3)),
        Layer("flatten", "flatten", (64, 7, 7), (3136,)),
        layer("fc0", "linear", (3136,), (512,), (512, 3136)),
        layer("fc1", "linear", (512,), (6,), (6, 512)),
    ]
    return SpikingDescription(layers, (4, 84, 84), {"kind": "analog"}, 16, {"kind": "robust"}, 6)


def test_nature_cnn_report_lists_every_layers_cores_and_the_unmappable_dense_layer():
    report = fit_report(_nature_cnn(), ChipSpec())
    assert report.cores == {"conv0": 40, "conv1": 25, "conv2": 14, "fc1": 1}
    assert list(report.unmappable) == ["fc0"]
    assert (report.unmappable["fc0"].required, report.unmappable["fc0"].limit) == (3136, 1152)
    assert report.total_cores == 80 and not report.fits
    with pytest.raises(FitError) as info:
        check_fit(_nature_cnn(), ChipSpec())
    error = info.value
    assert (error.layer, error.resource, error.required, error.limit) == ("fc0", "fan-in (axons per core)", 3136, 1152)
    assert (
        "cores per layer: conv0 40, conv1 25, conv2 14, fc0 cannot be mapped (3136 inputs > 1152 axons per core), "
        "fc1 1; the layers that can be mapped need 80 cores, the chip has 64"
    ) in str(error)


def test_a_network_that_fits_reports_its_cores():
    report = fit_report(_nature_cnn(), ChipSpec(n_cores=128, axons_per_core=4096))
    assert report.fits and report.unmappable == {}
    assert check_fit(_nature_cnn(), ChipSpec(n_cores=128, axons_per_core=4096)) == report.total_cores


def test_every_spec_value_says_where_it_comes_from():
    from dataclasses import fields

    from sb3_snn_nc64c.spec import LABELS, PROVENANCE, SDN_PAPER, Provenance

    assert {f.name for f in fields(ChipSpec)} <= set(PROVENANCE)
    table = ChipSpec().provenance()
    assert list(table) == [f.name for f in fields(ChipSpec)]
    for key, record in table.items():
        assert record["label"] in LABELS and record["source"], key
        assert isinstance(PROVENANCE[key], Provenance)
        if record["label"] == "fact":  # the SDN paper names the chip and its 0.103 W, nothing else
            assert record["source"] == SDN_PAPER, key
    assert table["n_cores"]["label"] == "inference" and "NC64C" in table["n_cores"]["source"]
    assert [key for key, record in table.items() if record["label"] == "fact"] == ["name"]
    assert "PAICORE" in table["axons_per_core"]["source"] and "1152" in table["axons_per_core"]["basis"]
    changed = ChipSpec(weight_bits=8).provenance()["weight_bits"]
    assert (changed["label"], changed["default"], changed["value"]) == ("user", 16, 8)


def test_input_macs_are_priced_at_their_widths():
    default = ChipSpec()
    # Horowitz 2014: a 12 x 16-bit multiply is 3x an 8 x 8-bit one (0.2 pJ); plus a 30-bit add (~0.1 pJ)
    assert default.input_mac_energy_pj == pytest.approx(0.2 * 12 * 16 / 64 + 0.1 * 30 / 32)
    assert ChipSpec(input_bits=8, weight_bits=8, membrane_bits=8).input_mac_energy_pj == pytest.approx(0.225)
    assert ChipSpec(energy_per_input_mac_pj=0.5).input_mac_energy_pj == 0.5
    rows = {row[0]: row for row in default.provenance_rows()}
    assert rows["energy_per_input_mac_pj"][1] == "0.694 (from the widths)"


def test_docs_and_readme_fit_statements_are_computed():
    """docs/hardware.md's provenance and fit tables and the README's Pong sentence equal what the script computes."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "render_docs.py"
    spec = importlib.util.spec_from_file_location("render_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.stale_blocks() == [], "run plugins/sb3-snn-nc64c/scripts/render_docs.py"
    reports = module.fit_reports({"pong": _nature_cnn()})
    sentence = module.pong_sentence(reports["pong"], ["conv0", "conv1", "conv2"])
    assert sentence == (
        "the converted Pong NatureCNN does not fit the 64-core NC64C model: its three convolutions "
        "need 79 cores (40 + 25 + 14) and its 3 136-input dense layer cannot be mapped with 1 152 "
        "axons per core"
    )

"""The fit check reports the whole network's need, not only the first resource that runs out."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_snn_nc64c import ChipSpec, check_fit, fit_report

from sb3_snn.backends import FitError, Layer, NeuronPopulation, SpikingDescription


def _nature_cnn() -> SpikingDescription:
    """SB3's NatureCNN on 4 x 84 x 84 Atari frames with 6 actions (Pong), zero weights: only shapes matter."""
    def layer(name, kind, shape_in, shape_out, weight, stride=(1, 1)):
        return Layer(name, kind, shape_in, shape_out, np.zeros(weight), np.zeros(weight[0]), stride=stride,
                     neuron=NeuronPopulation("IF", threshold=1.0, reset="subtract"))

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
    assert ("cores per layer: conv0 40, conv1 25, conv2 14, fc0 cannot be mapped (3136 inputs > 1152 axons per core), "
            "fc1 1; the layers that can be mapped need 80 cores, the chip has 64") in str(error)


def test_a_network_that_fits_reports_its_cores():
    report = fit_report(_nature_cnn(), ChipSpec(n_cores=128, axons_per_core=4096))
    assert report.fits and report.unmappable == {}
    assert check_fit(_nature_cnn(), ChipSpec(n_cores=128, axons_per_core=4096)) == report.total_cores

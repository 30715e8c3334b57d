"""Published figures every backend and report compares against (facts from the literature, not estimates).

Kept in one place so that the chip-model plugins, the pipeline's table and its plots agree.
"""

from __future__ import annotations

#: fp32 multiply-accumulate at 45 nm (Horowitz 2014, 3.7 pJ multiply + 0.9 pJ add): the usual ANN baseline
FP32_MAC_PJ = 4.6

#: Measured power from the SDN paper (Zhang et al., arXiv 2108.10078): (platform, watts, source)
CONTEXT_POWER_W: list[tuple[str, float, str]] = [
    ("DNN on RTX 2080", 64.0, "SDN paper (measured)"),
    ("DNN on RTX 8000", 62.0, "SDN paper (measured)"),
    ("DNN on Jetson Xavier NX", 1.429, "SDN paper (measured)"),
    ("SDN student on NC64C", 0.103, "SDN paper (measured, whole chip)"),
]

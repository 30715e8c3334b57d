"""The install constraints keep torch: what constraints.txt pins matches what is installed."""

from __future__ import annotations

from importlib import metadata

import torch

from conftest import ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_installed_torch_is_the_constrained_release():
    assert torch.__version__.split("+")[0] == _pins()["torch"]


def test_constrained_torchvision_accepts_the_installed_torch():
    pins = _pins()
    assert metadata.version("torchvision") == pins["torchvision"]
    torch_requirements = [r for r in metadata.requires("torchvision") or [] if r.replace(" ", "").startswith("torch(") or r.startswith("torch ") or r.startswith("torch=")]
    assert any(pins["torch"] in r for r in torch_requirements), torch_requirements


def test_torchaudio_pins_no_torch():
    requirements = metadata.requires("torchaudio") or []
    assert not [r for r in requirements if r.split()[0].split("(")[0].split("=")[0] == "torch"]

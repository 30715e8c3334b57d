"""constraints.txt: the pins that keep ``pip install`` from replacing the CPU torch agree with the package.

These read the repository's files (constraints.txt, pyproject.toml, scripts/install.sh), not the venv:
that the venv really kept its torch is checked by scripts/install.sh after every install, and that the
built wheels install and run is tests/test_wheel_install.py.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"constraints.txt pins exact releases: {line!r}"
            pins[requirement.name] = Version(specifier.version)
    return pins


def _dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {Requirement(r).name: Requirement(r) for r in requirements}


def test_constraints_pin_torch_and_the_packages_that_would_pull_a_new_one():
    """torch and its companions are pinned; any other pin is a framework of the ``interchange`` extra whose NIR
    importer's behaviour the tests pin (a new release may import graphs differently)."""
    pins = set(_pins())
    assert {"torch", "torchvision", "torchaudio"} <= pins
    assert pins - {"torch", "torchvision", "torchaudio"} <= {"snntorch", "norse"}


def test_the_package_accepts_every_pinned_release():
    pins, dependencies = _pins(), _dependencies()
    assert "torch" in dependencies
    for name, version in pins.items():
        if name in dependencies:
            assert dependencies[name].specifier.contains(version), (name, str(dependencies[name].specifier), version)


def test_install_script_installs_the_pinned_torch_first_and_everything_under_the_constraints():
    script = (ROOT / "scripts/install.sh").read_text()
    assert f'"torch=={_pins()["torch"]}"' in script
    assert "-c constraints.txt" in script and '[ "$before" != "$after" ]' in script


def test_pinned_torchvision_requires_the_pinned_torch():
    """torchvision releases pin one torch; the constraint pair must be such a release pair. Read from the
    pinned torchvision's own metadata, so it runs where that release is installed."""
    pins = _pins()
    try:
        installed = Version(metadata.version("torchvision"))
    except metadata.PackageNotFoundError:
        pytest.skip("torchvision is not installed")
    if installed != pins["torchvision"]:
        pytest.skip(f"torchvision {installed} is installed, not the pinned {pins['torchvision']}")
    torch_requirements = [Requirement(r) for r in metadata.requires("torchvision") or []
                          if Requirement(r).name == "torch" and Requirement(r).marker is None]
    assert torch_requirements and all(r.specifier.contains(pins["torch"]) for r in torch_requirements)

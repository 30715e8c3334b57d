"""What every benchmark script shares: a description of the machine, and writing a result record."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine(device: str = "cpu") -> str:
    """CPU model, cores, OS, torch build and threads (and the GPU when ``device`` is CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release().split('-')[0]}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def write_result(name: str, record: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (the input of ``benchmarks/report.py``)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=float))
    return path

"""Speed of CVTCLinear: forward+backward of the paper's CartPole network (80 -> 800 -> 2, batch 32)
against an MLP of the same shape, every candidate measured in the same run, interleaved.

    python benchmarks/bench_cvtc_speed.py [--threads 1] [--repeats 300] [--device cpu|cuda] [--name cvtc_speed]

Candidates (same weights): ``cvtc_fast`` (the default layer, ``method="fast"``: on CPU the fused numba
kernels of :class:`~sb3_snn.cvtc.layers.CVTCFusedFunction`, on CUDA the torch implementation),
``cvtc_torch`` (bound + partial scan in torch ops with the hand-written backward of
:class:`~sb3_snn.cvtc.layers.CVTCFunction`: the CPU default before the fused kernels), ``cvtc_auto``
(the same algorithm through autograd) and ``cvtc_scan`` (the straightforward batched algorithm: every
prefix of every (sample, neuron) pair, through autograd). Inputs are the CartPole
population code of observations from random play, weights the default init. Every candidate runs a few
warm-up steps first (the numba kernels are compiled, or loaded from numba's cache, there).

Two clocks: wall time (the figure that counts) and, on CPU, the thread's CPU time, which does not
count the time the thread waits for a core on a machine shared with other jobs (there, wall-time
ratios overstate the cost of the longer candidates). ``scanned`` is the share of (sample, neuron)
pairs per layer that needed the exact scan. Timing: :func:`benchmarks.timing.interleaved`; the rows go
to ``benchmarks/records/speed.jsonl`` (scratch copy ``benchmarks/out/results/<name>.json``).

Runs without the rest of sb3_snn (e.g. on a GPU box with only torch, numpy and gymnasium): the two
layer modules are then loaded from their files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch as th
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine, write_result

from benchmarks.timing import interleaved

ROOT = Path(__file__).resolve().parents[1]


def _load_layers() -> tuple[ModuleType, ModuleType]:
    """``sb3_snn.cvtc.layers`` and ``sb3_snn.cvtc.encoders``, from the files if sb3_snn cannot be imported."""
    try:
        from sb3_snn.cvtc import encoders, layers

        return layers, encoders
    except ImportError:
        modules = []
        for name in ("layers", "encoders"):
            spec = importlib.util.spec_from_file_location(f"cvtc_bench_{name}", ROOT / "sb3_snn" / "cvtc" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[spec.name] = module  # type: ignore[union-attr]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            modules.append(module)
        return modules[0], modules[1]


CVTC, ENCODERS = _load_layers()


def cartpole_inputs(batch: int, seed: int = 0) -> th.Tensor:
    """Encoded CartPole observations from random play (the first layer's real inputs)."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    rows = []
    while len(rows) < batch:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        rows.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return ENCODERS.PopulationEncoder.preset("cartpole")(th.as_tensor(np.array(rows)))


def fwd_bwd(net: nn.Module, z: th.Tensor) -> Callable[[], None]:
    """One training step's compute: zero_grad + forward + backward."""

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(z).sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=300, help="timed steps per candidate")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=800)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default=None, help="result file name (default cvtc_speed, cvtc_speed_cuda on CUDA)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    device = th.device(args.device)
    z = cartpole_inputs(args.batch).to(device)
    layer = CVTC.CVTCLinear
    nets: dict[str, nn.Module] = {
        "mlp": nn.Sequential(nn.Linear(80, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 2)),
        "cvtc_fast": nn.Sequential(layer(80, args.hidden), layer(args.hidden, 2)),
        "cvtc_torch": nn.Sequential(layer(80, args.hidden, method="torch"), layer(args.hidden, 2, method="torch")),
        "cvtc_auto": nn.Sequential(layer(80, args.hidden, method="auto"), layer(args.hidden, 2, method="auto")),
        "cvtc_scan": nn.Sequential(layer(80, args.hidden, method="scan"), layer(args.hidden, 2, method="scan")),
    }
    for name in ("cvtc_torch", "cvtc_auto", "cvtc_scan"):
        nets[name].load_state_dict(nets["cvtc_fast"].state_dict())
    for net in nets.values():
        net.to(device)
    # interleaved call by call, so that load from other processes hits every candidate alike
    timings = interleaved({name: fwd_bwd(net, z) for name, net in nets.items()}, repeats=args.repeats, warmup=5,
                          sync=th.cuda.synchronize if device.type == "cuda" else None)
    scanned = [lay.last_info.scanned for lay in nets["cvtc_fast"]]
    fast_path = "fused" if CVTC.fused_available(z, nets["cvtc_fast"][0].weight) else "torch"
    wall_ms = {name: t.wall_ms for name, t in timings.items()}
    cpu_ms = {name: t.cpu_ms for name, t in timings.items()}
    rows = []
    for name in nets:
        row = {"candidate": name, "wall_ms_median": round(wall_ms[name], 4),
               "ratio_vs_mlp_wall": round(wall_ms[name] / wall_ms["mlp"], 2),
               "samples": timings[name].n}
        if device.type == "cpu":
            row.update(cpu_ms_median=round(cpu_ms[name], 4), ratio_vs_mlp_cpu=round(cpu_ms[name] / cpu_ms["mlp"], 2))
        if name != "mlp":
            row["target_met"] = row["ratio_vs_mlp_wall"] <= 3.0
            if device.type == "cpu":
                row["target_met_cpu"] = row["ratio_vs_mlp_cpu"] <= 3.0
        rows.append(row)
    fast = rows[1]
    headline = (f"CVTC 80→{args.hidden}→2 fwd+bwd, batch {args.batch}, {device.type} ({fast_path} path): "
                f"{fast['ratio_vs_mlp_wall']}× MLP wall"
                + (f", {fast['ratio_vs_mlp_cpu']}× in thread CPU time" if device.type == "cpu" else "")
                + f" (target ≤ 3×: {'met' if fast['target_met'] else 'NOT met'}); MLP {wall_ms['mlp']:.3f} ms, "
                f"CVTC {wall_ms['cvtc_fast']:.3f} ms")
    record = {
        "benchmark": "cvtc_speed",
        "title": f"CVTCLinear speed: 80→{args.hidden}→2, batch {args.batch}, forward+backward vs an MLP of the same shape",
        "command": " ".join(["python", os.path.relpath(sys.argv[0], ROOT) if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                             *sys.argv[1:]]),
        "machine": machine(str(device)) + (f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""),
        "target": "CVTC forward+backward within 3× of the MLP (wall clock)",
        "headline": headline,
        "rows": rows,
        "scanned_share_per_layer_fast": scanned,
        "fast_path": fast_path,
    }
    print(headline)
    for row in rows:
        print(row)
    path = write_result(args.name or ("cvtc_speed" if device.type == "cpu" else f"cvtc_speed_{device.type}"), record)
    print("wrote", path)


if __name__ == "__main__":
    main()

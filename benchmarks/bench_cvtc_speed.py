"""Speed of CVTCLinear: forward+backward of the paper's CartPole network (80 -> 800 -> 2, batch 32)
against an MLP of the same shape, every candidate measured in the same run, interleaved.

    python benchmarks/bench_cvtc_speed.py [--threads 1] [--repeats 200] [--out benchmarks/results/cvtc_speed.json]

Candidates: ``auto`` (bound + partial scan, the default) and ``scan`` (the straightforward batched
algorithm: every prefix of every (sample, neuron) pair). Inputs are the CartPole population code of
observations from random play, weights the default init; ``scanned`` is the share of pairs per layer
that needed the exact scan (the data-dependent part of the cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from torch import nn

from sb3_snn.layers import CVTCLinear, PopulationEncoder


def cartpole_inputs(batch: int, seed: int = 0) -> th.Tensor:
    """Encoded CartPole observations from random play (the first layer's real inputs)."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    rows = []
    while len(rows) < batch:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        rows.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return PopulationEncoder.preset("cartpole")(th.as_tensor(np.array(rows)))


def time_step(net: nn.Module, z: th.Tensor, repeats: int) -> list[float]:
    """Per-call wall times (ms) of zero_grad + forward + backward."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.zero_grad(set_to_none=True)
        net(z).sum().backward()
        if z.is_cuda:
            th.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=800)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cvtc_speed.json"))
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    device = th.device(args.device)
    z = cartpole_inputs(args.batch).to(device)
    nets: dict[str, nn.Module] = {
        "mlp": nn.Sequential(nn.Linear(80, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 2)),
        "cvtc_auto": nn.Sequential(CVTCLinear(80, args.hidden), CVTCLinear(args.hidden, 2)),
        "cvtc_scan": nn.Sequential(CVTCLinear(80, args.hidden, method="scan"), CVTCLinear(args.hidden, 2, method="scan")),
    }
    nets["cvtc_scan"].load_state_dict(nets["cvtc_auto"].state_dict())
    for net in nets.values():
        net.to(device)
        time_step(net, z, 5)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in nets}
    rounds = 10
    for _ in range(rounds):  # interleave so that load from other processes hits every candidate alike
        for name, net in nets.items():
            samples[name] += time_step(net, z, max(1, args.repeats // rounds // (20 if name == "cvtc_scan" else 1)))
    medians = {name: float(np.median(values)) for name, values in samples.items()}
    scanned = [layer.last_info.scanned for layer in nets["cvtc_auto"]]
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch": th.__version__, "threads": args.threads, "device": str(device),
                    "gpu": th.cuda.get_device_name(device) if device.type == "cuda" else None},
        "shape": f"80->{args.hidden}->2, batch {args.batch}",
        "median_ms": medians,
        "ratio_vs_mlp": {name: medians[name] / medians["mlp"] for name in nets if name != "mlp"},
        "scanned_share_per_layer_auto": scanned,
        "samples": {name: len(values) for name, values in samples.items()},
    }
    print(json.dumps(record, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: the fast IF simulation on a GPU (needs only torch on the GPU machine).

Step 1, where sb3-snn is installed: convert the PPO Pong fixture and write the network + frames::

    .venv/bin/python benchmarks/bench_conversion_speed_gpu.py --prepare benchmarks/out/speed_net.pt

Step 2, on the GPU machine (torch only; ``sb3_snn/conversion/simulation.py`` is loaded by path)::

    python benchmarks/bench_conversion_speed_gpu.py --network benchmarks/out/speed_net.pt --device cuda

Times ``simulate_fast`` against the per-step reference loop (``simulate_reference``: the whole
network once per step, IF semantics identical to spikingjelly's soft-reset ``IFNode``) at T = 500 for
batch 1 and a larger batch, and counts spike mismatches between the two.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import torch as th
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _simulation_module():
    spec = importlib.util.spec_from_file_location("_simulation", ROOT / "sb3_snn" / "conversion" / "simulation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_simulation"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _layers(document: dict) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for spec in document["layer_specs"]:
        if spec["kind"] == "linear":
            layers.append(nn.Linear(spec["in_features"], spec["out_features"], bias=spec["bias"]))
        elif spec["kind"] == "conv2d":
            layers.append(nn.Conv2d(spec["in_channels"], spec["out_channels"], tuple(spec["kernel_size"]),
                                    stride=tuple(spec["stride"]), padding=tuple(spec["padding"]), bias=spec["bias"]))
        else:
            layers.append(nn.Flatten())
    module = nn.ModuleList(layers)
    module.load_state_dict({k.removeprefix("layers."): v for k, v in document["state_dict"].items()})
    return list(module)


def prepare(path: str, n_frames: int = 64) -> None:
    """Convert the fixture on frames it played; save layer specs, weights and preprocessed frames."""
    from bench_conversion_speed import FIXTURE
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_snn.conversion import collect_calibration_frames, convert, extract_network

    gym.register_envs(ale_py)
    model = PPO.load(FIXTURE, device="cpu",
                     custom_objects={"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0})
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=0), n_stack=4)
    source = extract_network(model)
    calibration = collect_calibration_frames(source, env, 1000, epsilon=0.05, seed=0)
    policy = convert(model, calibration_obs=calibration, percentile=99.9, timesteps=500)
    frames = source.preprocess(collect_calibration_frames(source, env, n_frames + 50, epsilon=0.05, seed=1)[50:])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    th.save({"layer_specs": policy.layer_specs, "state_dict": policy.state_dict(), "frames": frames}, path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Prepare or run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", default=None, help="write the network + frames here and exit")
    parser.add_argument("--network", default="benchmarks/out/speed_net.pt")
    parser.add_argument("--device", default="cuda" if th.cuda.is_available() else "cpu")
    parser.add_argument("--timesteps", type=int, default=500)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        th.set_num_threads(args.threads)
    # exact float32 arithmetic on the GPU (TF32 convolutions round differently per batch shape)
    th.backends.cudnn.allow_tf32 = False
    th.backends.cuda.matmul.allow_tf32 = False
    if args.prepare:
        sys.path.insert(0, str(Path(__file__).parent))
        prepare(args.prepare)
        return 0
    sim = _simulation_module()
    document = th.load(args.network, weights_only=True)
    device, steps = args.device, args.timesteps
    layers = [layer.to(device) for layer in _layers(document)]
    frames = document["frames"].to(device)

    def timed(fn):
        fn()
        best = float("inf")
        for _ in range(args.repeats):
            if device.startswith("cuda"):
                th.cuda.synchronize()
            start = time.perf_counter()
            out = fn()
            if device.startswith("cuda"):
                th.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return best, out

    rows = []
    for batch in args.batches:
        x = frames[:batch]
        # timed calls each lambda within this iteration
        fast_s, fast = timed(lambda: sim.simulate_fast(layers, x, steps))  # noqa: B023
        ref_s, ref = timed(lambda: sim.simulate_reference(layers, x, steps))  # noqa: B023
        mismatches = sum(int((fast.spike_counts[k] != ref.spike_counts[k]).sum()) for k in ref.spike_counts)
        spikes = sum(int(c.sum()) for c in ref.spike_counts.values())
        rows.append({"batch": batch, "fast_seconds": fast_s, "per_step_loop_seconds": ref_s,
                     "speedup": ref_s / fast_s, "fast_seconds_per_action": fast_s / batch,
                     "spike_mismatches_float32": mismatches, "total_spikes": spikes,
                     "fast_path_fraction": {str(k): v for k, v in fast.fast_fraction.items()}})
        print(rows[-1])
    result = {
        "benchmark": f"conversion_speed_gpu_{device.split(':')[0]}",
        "title": f"Conversion: IF simulation speed on {device} (torch only), NatureCNN, T = {steps}",
        "command": " ".join(["python", "benchmarks/bench_conversion_speed_gpu.py", *sys.argv[1:]]),
        "machine": (f"{platform.platform()}, torch {th.__version__}, {th.get_num_threads()} torch thread(s)"
                    + (f", GPU {th.cuda.get_device_name(0)}" if device.startswith("cuda") else "")),
        "target": "GPU figures of the fast simulation vs a per-step loop",
        "headline": ", ".join(f"batch {r['batch']}: {r['speedup']:.1f}x ({1000 * r['fast_seconds_per_action']:.1f} ms/action)"
                              for r in rows),
        "notes": ["baseline: simulate_reference, the whole network once per step (plain torch, the semantics of "
                  "spikingjelly's soft-reset IFNode); spikingjelly is not installed on the GPU machine",
                  "network: PPO Pong fixture actor (NatureCNN + action_net), percentile 99.9; TF32 off"],
        "rows": rows,
    }
    output = Path(args.output or f"benchmarks/out/results/conversion_speed_gpu_{device.split(':')[0]}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"wrote {output}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import save_rows

    save_rows(output.stem, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

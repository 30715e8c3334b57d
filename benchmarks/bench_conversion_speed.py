"""Benchmark: speed and exactness of the fast IF simulation on a NatureCNN at T = 500, batch 1.

The network is the PPO Pong fixture's actor (NatureCNN + action_net; a trained ReLU net, so its
firing rates are realistic), converted with ``sb3_snn.convert`` (percentile 99.9) on frames it
played. Compared on the same frames:

* ``fast``: :func:`sb3_snn.conversion.simulate_fast` (cumulative spike counts through time-batched
  layers, silent input channels/features dropped, closed-form first layer, one clamp per step per layer);
* ``sj_loop``: a per-step loop over the same layers with spikingjelly ``IFNode`` (single-step mode,
  soft reset), the textbook implementation: T forward passes of the whole network;
* ``sj_multistep``: spikingjelly multi-step mode (layers on ``[T*B, ...]``, ``IFNode(step_mode='m')``);
* ``sj_ann2snn``: spikingjelly's own ``ann2snn.Converter(RateCodingRecipe(..., mode="99.9%"))`` on the
  unnormalised ANN, run for T steps (its last Linear is non-spiking: readout = mean output).

Spike identity is checked in float32 (what is timed) and float64. Times are the calling thread's CPU
time (``time.thread_time``, one torch thread), medians, candidates interleaved frame by frame, so that
other processes on a loaded machine barely move them.

    .venv/bin/python benchmarks/bench_conversion_speed.py            # CPU, 1 thread
    .venv/bin/python benchmarks/bench_conversion_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch as th
from torch import nn

FIXTURE = str(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ppo_pong" / "ppo_pong.zip")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        th.cuda.synchronize()


def _time(fn, device: str, repeats: int, warm_up: bool = True) -> tuple[float, object]:
    """Median over ``repeats`` of ``fn()``'s time (s) and its last result.

    On a CPU the time is the calling thread's CPU time (``time.thread_time``: with one torch thread
    all the work runs in it), which other processes on a loaded machine barely disturb; on a GPU it
    is wall time with synchronisation.
    """
    clock = time.perf_counter if device.startswith("cuda") else time.thread_time
    result = fn() if warm_up else None
    seconds = []
    for _ in range(repeats):
        _sync(device)
        start = clock()
        result = fn()
        _sync(device)
        seconds.append(clock() - start)
    return float(np.median(seconds)), result


def sj_step_loop(layers: list[nn.Module], x: th.Tensor, steps: int) -> dict[int, th.Tensor]:
    """Per-step loop over spikingjelly IFNode layers; returns spike counts per synaptic layer index."""
    from spikingjelly.activation_based import functional, neuron

    nodes = {i: neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="s").to(x.device)
             for i, layer in enumerate(layers) if isinstance(layer, (nn.Linear, nn.Conv2d))}
    counts: dict[int, th.Tensor] = {}
    with th.no_grad():
        for _ in range(steps):
            h = x
            for i, layer in enumerate(layers):
                h = layer(h)
                if i in nodes:
                    h = nodes[i](h)  # v += I; s = [v >= 1]; v -= s (soft reset)
                    counts[i] = counts[i] + h if i in counts else h.clone()
    for node in nodes.values():
        functional.reset_net(node)
    return counts


def sj_multistep(layers: list[nn.Module], x: th.Tensor, steps: int) -> dict[int, th.Tensor]:
    """spikingjelly multi-step mode: each layer on [T*B, ...], IFNode(step_mode='m') over [T, B, ...]."""
    from spikingjelly.activation_based import neuron

    counts: dict[int, th.Tensor] = {}
    with th.no_grad():
        h = x.unsqueeze(0).expand(steps, *x.shape)
        for i, layer in enumerate(layers):
            out = layer(h.reshape(-1, *h.shape[2:]))
            h = out.reshape(steps, -1, *out.shape[1:])
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                h = neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="m").to(x.device)(h)
                counts[i] = h.sum(dim=0)
    return counts


def ann_module(layers: list[nn.Module]) -> nn.Sequential:
    """The ANN as a plain Sequential (ReLU after every synaptic layer but the last), FX-traceable."""
    modules: list[nn.Module] = []
    synaptic = [i for i, layer in enumerate(layers) if isinstance(layer, (nn.Linear, nn.Conv2d))]
    for i, layer in enumerate(layers):
        modules.append(copy.deepcopy(layer))
        if i in synaptic and i != synaptic[-1]:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=500)
    parser.add_argument("--frames", type=int, default=5, help="frames timed (batch 1 each)")
    parser.add_argument("--agreement-frames", type=int, default=100, help="frames for action agreement")
    parser.add_argument("--n-calibration", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model-path", default=FIXTURE)
    parser.add_argument("--output", default=None, help="default: benchmarks/out/results/conversion_speed_<device>.json")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    import ale_py
    import gymnasium as gym
    from spikingjelly.activation_based import ann2snn, functional
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_snn.conversion import collect_calibration_frames, convert, extract_network, simulate_fast
    from sb3_snn.spiking import count_operations
    from bench_conversion_common import write_record

    gym.register_envs(ale_py)
    steps, device = args.timesteps, args.device
    model = PPO.load(args.model_path, device="cpu",
                     custom_objects={"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0})
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=0), n_stack=4)
    source = extract_network(model)
    calibration = collect_calibration_frames(source, env, args.n_calibration, epsilon=0.05, seed=0)
    test = collect_calibration_frames(source, env, args.agreement_frames + 50, epsilon=0.05, seed=1)[50:]
    policy = convert(model, calibration_obs=calibration, percentile=99.9, timesteps=steps)
    layers = [copy.deepcopy(layer).to(device) for layer in policy.layers]
    x_all = source.preprocess(test).to(device)
    report: dict[str, object] = {}

    # --- timing, batch 1 -------------------------------------------------------------------
    timings: dict[str, list[float]] = {"fast": [], "sj_loop": [], "sj_multistep": []}
    mismatch32 = {"sj_loop": 0, "sj_multistep": 0}
    total_spikes = 0
    fast_fraction: list[dict[int, float]] = []
    synops = []
    description = policy.spiking_description()
    for k in range(args.frames):
        x = x_all[k : k + 1]
        # the lambdas below are called by _time within this iteration
        seconds, sim = _time(lambda: simulate_fast(layers, x, steps), device, args.repeats)  # noqa: B023
        timings["fast"].append(seconds)
        fast_fraction.append(sim.fast_fraction)
        counts_by_name = {policy.layer_names[i]: c.cpu().numpy() for i, c in sim.spike_counts.items()}
        synops.append(count_operations(description, counts_by_name))
        for name, fn in (("sj_loop", sj_step_loop), ("sj_multistep", sj_multistep)):
            seconds, counts = _time(lambda: fn(layers, x, steps), device,  # noqa: B023 1 if name == "sj_loop" else args.repeats,
                                    warm_up=name != "sj_loop" or k == 0)
            timings[name].append(seconds)
            mismatch32[name] += sum(int((counts[i] != sim.spike_counts[i]).sum()) for i in counts)
        total_spikes += sum(int(c.sum()) for c in sim.spike_counts.values())
    # float64: both paths, first frames
    layers64 = [copy.deepcopy(layer).double() for layer in layers]
    mismatch64 = 0
    for k in range(min(args.frames, 2)):
        x = x_all[k : k + 1].double()
        a = simulate_fast(layers64, x, steps)
        b = sj_step_loop(layers64, x, steps)
        mismatch64 += sum(int((b[i] != a.spike_counts[i]).sum()) for i in b)
    report["timing_seconds_per_action"] = {name: {"median": float(np.median(v)), "min": float(np.min(v)), "all": v}
                                           for name, v in timings.items()}
    report["speedup_vs_sj_loop"] = float(np.median(timings["sj_loop"]) / np.median(timings["fast"]))
    report["speedup_vs_sj_multistep"] = float(np.median(timings["sj_multistep"]) / np.median(timings["fast"]))
    report["spike_count_mismatches"] = {
        "float32": mismatch32, "float64_vs_sj_loop": mismatch64, "total_spikes_float32": total_spikes,
        "frames_float32": args.frames, "frames_float64": min(args.frames, 2),
    }
    report["fast_path_fraction_per_layer"] = {
        policy.layer_names[i]: float(np.mean([f[i] for f in fast_fraction])) for i in fast_fraction[0]
    }
    report["synops_per_action"] = float(np.mean([c.synops for c in synops]))
    report["input_macs_per_action"] = float(np.mean([c.input_macs for c in synops]))
    report["ann_macs"] = synops[0].ann_macs
    report["dense_macs_T_steps"] = synops[0].ann_macs * steps
    report["firing_rates"] = {k: float(np.mean([c.firing_rates[k] for c in synops])) for k in synops[0].firing_rates}

    # --- agreement with the ANN and with spikingjelly's ann2snn ------------------------------
    ann = ann_module(source.layers).to(device).eval()
    with th.no_grad():
        ann_actions = ann(x_all).argmax(dim=1)
        ours = th.cat([simulate_fast(layers, x_all[i : i + 4], steps).outputs for i in range(0, len(x_all), 4)])
    ours_actions = ours.argmax(dim=1)
    loader = [source.preprocess(calibration[i : i + 32]).to(device) for i in range(0, len(calibration), 32)]
    start = time.perf_counter()
    sj_snn = ann2snn.Converter(ann2snn.RateCodingRecipe(loader, mode="99.9%")).convert(copy.deepcopy(ann)).to(device)
    sj_convert_seconds = time.perf_counter() - start

    def sj_run(x: th.Tensor) -> th.Tensor:
        functional.reset_net(sj_snn)
        with th.no_grad():
            out = sum(sj_snn(x) for _ in range(steps))
        return out / steps

    sj_time, _ = _time(lambda: sj_run(x_all[:1]), device, 1, warm_up=False)
    sj_outputs = th.cat([sj_run(x_all[i : i + 4]) for i in range(0, len(x_all), 4)])
    sj_actions = sj_outputs.argmax(dim=1)
    report["agreement"] = {
        "frames": len(x_all),
        "ours_vs_ann": float((ours_actions == ann_actions).float().mean()),
        "sj_ann2snn_vs_ann": float((sj_actions == ann_actions).float().mean()),
        "ours_vs_sj_ann2snn": float((ours_actions == sj_actions).float().mean()),
    }
    report["sj_ann2snn"] = {"seconds_per_action": sj_time, "convert_seconds": sj_convert_seconds,
                            "recipe": "RateCodingRecipe(loader of 32-frame batches, mode='99.9%')"}
    print(json.dumps(report, indent=2))
    t = report["timing_seconds_per_action"]
    rows = [{"simulation": name, "median s/action": round(t[key]["median"], 4), "min s/action": round(t[key]["min"], 4),
             "fast / this": round(t[key]["median"] / t["fast"]["median"], 2) if key != "fast" else 1.0,
             "spike mismatches vs fast (float32)": report["spike_count_mismatches"]["float32"].get(key, 0)}
            for key, name in (("fast", "sb3-snn fast (cumulative counts, time-batched, closed form / per-step clamp)"),
                              ("sj_loop", "spikingjelly IFNode, per-step loop"),
                              ("sj_multistep", "spikingjelly multi-step (T-batched layers, IFNode m)"))]
    rows.append({"simulation": "spikingjelly ann2snn.Converter (own normalisation)",
                 "median s/action": round(sj_time, 4), "min s/action": round(sj_time, 4),
                 "fast / this": round(sj_time / t["fast"]["median"], 2)})
    agreement = report["agreement"]
    record = {
        "benchmark": f"conversion_speed_{device.split(':')[0]}",
        "title": f"Conversion: IF simulation speed, NatureCNN, T = {steps}, batch 1 ({device})",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_conversion_speed.py", *sys.argv[1:]]),
        "target": ">= 10x faster than a per-step loop over spikingjelly IFNode layers, identical spikes; "
                  "agreement and time vs spikingjelly ann2snn",
        "headline": (f"{report['speedup_vs_sj_loop']:.1f}x vs the spikingjelly per-step loop, "
                     f"{report['speedup_vs_sj_multistep']:.1f}x vs spikingjelly multi-step; spikes identical in float64 "
                     f"({report['spike_count_mismatches']['float64_vs_sj_loop']} mismatches), "
                     f"{report['spike_count_mismatches']['float32']['sj_loop']} of "
                     f"{report['spike_count_mismatches']['total_spikes_float32']} differ in float32 (summation order); "
                     f"actions agree with the ANN on {100 * agreement['ours_vs_ann']:.0f} % and with ann2snn on "
                     f"{100 * agreement['ours_vs_sj_ann2snn']:.0f} % of {agreement['frames']} frames"),
        "notes": ["network: PPO Pong fixture actor (NatureCNN + action_net), converted at percentile 99.9 on frames it "
                  "played; timing = calling thread's CPU time (time.thread_time; GPU: wall time), median of "
                  "--repeats per frame (the per-step loops once per frame), median over frames; candidates "
                  "interleaved frame by frame",
                  "fast path: cumulative counts through time-batched layers (silent input channels/features "
                  "dropped, channels_last convolutions); first layer closed form; wide CPU layers: one clamp "
                  "per step for the whole layer; share of neurons solved by a closed form or the cumulative-max "
                  f"identity alone, per layer: {report['fast_path_fraction_per_layer']}",
                  f"SynOps/action {report['synops_per_action']:.3g}, "
                  f"dense MACs over T steps {report['dense_macs_T_steps']:.3g}"],
        "rows": rows,
        "timesteps": steps, "batch": 1, "device": device, "torch_threads": th.get_num_threads(),
        "details": report,
    }
    write_record(args.output or f"benchmarks/out/results/conversion_speed_{device.split(':')[0]}.json", record, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

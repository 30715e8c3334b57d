"""A CVTC CartPole agent on the NC64C chip model: agreement with its beta-free float policy vs the time resolution.

    .venv/bin/python benchmarks/bench_nc64c_cvtc.py [--quick] [--model PATH]

The agent is trained with the shipped config (``sb3-snn train --algo ddqn --env CartPole-v1 -conf cvtc
--seed 0 -f benchmarks/out/nc64c_cvtc``, about 50k steps; the script trains it when ``--model`` is not
given and no trained one is cached there, and uses the zoo's best evaluated model when there is one).
Its beta-free network (``policy.set_inference("mostafa")``) is compiled for ``nc64c`` at each time step
``temporal_dt`` of a sweep (units of the synaptic time constant) on 200 example states and compared, on
held-out states (other episodes), with the float beta-free policy's greedy action
(``argmax q_sign * z_out``): the integer chip simulation, batched, and the float re-simulation on the same
grid (what the grid alone costs). At the coarsest resolution that reaches 99 % the chip is also run one
observation at a time (and, with ``--episodes N``, plays CartPole itself). States come from epsilon-greedy (0.1) episodes of
the agent's float beta-free policy: seed 1 for the example states, seed 2 for the held-out ones.

Writes rows of suite ``nc64c`` (experiment ``cvtc_resolution``) to ``benchmarks/records/nc64c.jsonl``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import Row, append_rows

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ROOT / "benchmarks" / "out" / "nc64c_cvtc"
SUITE, EXPERIMENT, ENV = "nc64c", "cvtc_resolution", "CartPole-v1"
#: time steps swept, coarsest first (units of tau_syn)
RESOLUTIONS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
QUICK_RESOLUTIONS = (0.5, 0.1, 0.02, 0.01)
TARGET = 0.99


def find_model(folder: Path) -> Path | None:
    """The zoo experiment's best evaluated model, else its final model (latest experiment), or ``None``."""
    runs = sorted(folder.glob(f"ddqn/{ENV}_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for run in reversed(runs):
        for name in ("best_model.zip", f"{ENV}.zip"):
            if (run / name).is_file():
                return run / name
    return None


def train(folder: Path) -> Path:
    """Train the agent with the shipped config (seed 0) into ``folder``."""
    command = [
        sys.executable,
        "-m",
        "sb3_snn",
        "train",
        "--algo",
        "ddqn",
        "--env",
        ENV,
        "-conf",
        "cvtc",
        "--seed",
        "0",
        "-f",
        str(folder),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    model = find_model(folder)
    assert model is not None, f"training wrote no model under {folder}"
    return model


def collect_states(policy, n: int, seed: int, epsilon: float = 0.1) -> np.ndarray:
    """``n`` states of epsilon-greedy CartPole episodes of ``policy`` (evenly spaced over the states visited)."""
    import gymnasium as gym

    env = gym.make(ENV)
    rng = np.random.default_rng(seed)
    states: list[np.ndarray] = []
    episode = 0
    while len(states) < 3 * n:
        obs, _ = env.reset(seed=seed * 1000 + episode)
        done = False
        while not done:
            states.append(obs)
            if rng.random() < epsilon:
                action = int(rng.integers(env.action_space.n))
            else:
                action = int(policy.predict(obs, deterministic=True)[0])
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        episode += 1
    chosen = np.linspace(0, len(states) - 1, n).astype(int)
    return np.asarray(states, dtype=np.float64)[chosen]


def play(deployment, episodes: int, seed: int = 100) -> list[float]:
    """Returns of CartPole episodes acted by the chip model, one observation at a time."""
    import gymnasium as gym

    env = gym.make(ENV)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(deployment.run(obs)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer resolutions and states")
    parser.add_argument("--episodes", type=int, default=0, help="CartPole episodes the chip plays at the resolution found")
    parser.add_argument("--model", type=Path, default=None, help="a trained CVTC agent (.zip); default: cached/trained")
    args = parser.parse_args()
    th.set_num_threads(1)

    from sb3_snn import DDQN, backends
    from sb3_snn_nc64c.temporal import simulate_temporal_grid

    model_path = args.model or find_model(AGENTS) or train(AGENTS)
    model = DDQN.load(model_path, device="cpu", buffer_size=1)
    policy = model.policy
    policy.set_inference("mostafa")
    policy.set_training_mode(False)
    description = policy.spiking_description()
    n_held = 300 if args.quick else 1000
    example = collect_states(policy, 200, seed=1)
    held = collect_states(policy, n_held, seed=2)
    with th.no_grad():
        reference = policy.q_net(th.as_tensor(held, dtype=th.float32)).argmax(1).numpy()
    # the policy's float network is the exact reference simulation (to float32 rounding): say how close
    check = backends.reference_simulate(description, held[:100]).actions
    print(f"model {model_path}; policy vs exact reference on 100 states: {np.mean(check == reference[:100]):.3f}")

    setting = {
        "model": str(model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path),
        "config": "configs/zoo/cvtc.yml (-conf cvtc)",
        "training_seeds": 1,
        "n_example_states": len(example),
        "state_source": "epsilon-greedy (0.1) episodes of the float beta-free policy",
    }
    rows: list[Row] = []

    def row(metric: str, value: float, unit: str, dt: float | None, n: int | None = None, **extra) -> None:
        point = {**setting, **({} if dt is None else {"temporal_dt": dt})}
        rows.append(Row(SUITE, EXPERIMENT, "cvtc-mostafa", ENV, point, 0, metric, float(value), None, n, unit, extra))

    reached = None
    for dt in QUICK_RESOLUTIONS if args.quick else RESOLUTIONS:
        start = time.perf_counter()
        backend = backends.load("nc64c", temporal_dt=dt)
        deployment = backend.compile(description, example, eval_obs=held[:1])
        actions = deployment.run(held)
        chip = float(np.mean(actions == reference))
        grid = simulate_temporal_grid(description, deployment.spec, held)
        on_grid = float(np.mean(grid.actions == reference))
        metrics = deployment.report().metrics
        grid_info = deployment.network.grid
        extra = {"dt_exact": grid_info.dt, "steps_in_window": grid_info.n_steps}
        row("agreement_with_float", chip, "fraction", dt, len(held), **extra)
        row("agreement_float_on_grid", on_grid, "fraction", dt, len(held), **extra)
        row("chip_vs_float_grid_same_action", float(np.mean(actions == grid.actions)), "fraction", dt, len(held))
        row("synops_per_action", metrics["synops_per_action"], "synops", dt, len(example))
        row("energy_per_action", metrics["energy_per_action_uj"], "uJ", dt, len(example))
        row("latency_per_action", metrics["latency_us"], "us", dt, len(example))
        row("steps_per_action", deployment.calibration["mean_steps"], "steps", dt, len(example))
        print(
            f"dt {dt:<6g} (exact {grid_info.dt:.5f}, {grid_info.n_steps} steps): chip {chip:.4f}, float on grid "
            f"{on_grid:.4f}, SynOps {metrics['synops_per_action']:.0f}, {metrics['energy_per_action_uj']:.3g} µJ, "
            f"{metrics['latency_us']:.0f} µs, cores {metrics['cores']}  [{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
        if reached is None and chip >= TARGET:
            reached = (dt, deployment)
    if reached is None:
        print(f"no resolution reached {TARGET:.0%}")
    else:
        dt, deployment = reached
        row("coarsest_dt_reaching_99", dt, "none", None, len(held))
        singles = np.array([deployment.run(state) for state in held[:200]])
        row("agreement_one_obs_at_a_time", float(np.mean(singles == reference[:200])), "fraction", dt, 200)
        row("one_obs_vs_batched_same_action", float(np.mean(singles == deployment.run(held[:200]))), "fraction", dt, 200)
        print(f"coarsest dt reaching {TARGET:.0%}: {dt}; one at a time: {np.mean(singles == reference[:200]):.4f}")
        if args.episodes > 0:
            returns = play(deployment, args.episodes)
            row(
                "chip_episode_return",
                float(np.mean(returns)),
                "return",
                dt,
                len(returns),
                stderr_note="returns " + ", ".join(f"{r:g}" for r in returns),
            )
            print(f"chip plays CartPole at dt {dt}: {returns}")
    path = append_rows(SUITE, rows)
    print(f"{len(rows)} rows -> {path}")


if __name__ == "__main__":
    main()

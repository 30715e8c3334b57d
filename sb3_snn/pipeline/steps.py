"""The pipeline's stages: each takes the settings and its folder, writes files, returns a summary.

teacher -> sdn (distil) -> conversion (convert + T sweep) -> cvtc (DDQN) -> evaluation -> export.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.zoo.checkpoint import checkpoint_timesteps
from sb3_snn.pipeline.config import zoo_config, zoo_section
from sb3_snn.pipeline.stages import StageOutcome
from sb3_snn.zoo.training import train_from_zoo
from sb3_snn.zoo.algos import install_algos


def make_env(env_id: str, algo: str, seed: int, n_envs: int = 1) -> VecEnv:
    """An evaluation env built like the training one (the zoo config's wrappers and frame stack)."""
    from rl_zoo3 import create_test_env

    import rl_zoo3.import_envs  # noqa: F401

    from stable_baselines3.common.vec_env import VecFrameStack, unwrap_vec_wrapper

    hyperparams = zoo_section(zoo_config(algo), env_id)
    env = create_test_env(env_id, n_envs=n_envs, stats_path=None, seed=seed, log_dir=None, should_render=False,
                          hyperparams=hyperparams)
    # rl_zoo3 stacks frames only when it loads saved statistics (stats_path); the pipeline has none
    n_stack = int(hyperparams.get("frame_stack", 0) or 0)
    if n_stack > 0 and unwrap_vec_wrapper(env, VecFrameStack) is None:
        env = VecFrameStack(env, n_stack)
    return env


def load_model(algo: str, path: Path, env: VecEnv | None = None) -> BaseAlgorithm:
    """Load a model saved by a stage (any registered or zoo algorithm)."""
    algos = install_algos()
    kwargs: dict[str, Any] = {"buffer_size": 1} if algo in ("dqn", "ddqn", "qrdqn", "sdn") else {}
    return algos[algo].load(path, env=env, device="cpu", custom_objects={"optimize_memory_usage": False}, **kwargs)


def parameter_bytes(module: Any) -> int:
    """Bytes of the parameters that act (a DQN's target network and a PPO's critic excluded)."""
    import torch as th

    if hasattr(module, "q_net") and isinstance(module.q_net, th.nn.Module):
        module = module.q_net
    elif hasattr(module, "mlp_extractor") and hasattr(module, "action_net"):  # actor-critic: the actor only
        parts = [module.features_extractor, module.action_net]
        pi = getattr(module.mlp_extractor, "policy_net", None)
        if pi is not None:
            parts.append(pi)
        return sum(p.numel() * p.element_size() for part in parts for p in part.parameters())
    return sum(p.numel() * p.element_size() for p in module.parameters())


def learning_curve(folder: Path) -> list[list[float]]:
    """``[timestep, episode reward]`` pairs from the zoo's monitor files under ``folder``."""
    points: list[list[float]] = []
    for monitor in sorted(folder.rglob("*.monitor.csv")):
        steps = 0
        for line in monitor.read_text().splitlines()[2:]:
            reward, length, *_ = line.split(",")
            steps += int(length)
            points.append([steps, float(reward)])
    return points


def _train(algo: str, settings: dict[str, Any], stage: dict[str, Any], folder: Path, config: Path,
           hyperparams: dict[str, Any] | None, model_name: str) -> StageOutcome:
    n_timesteps = int(stage["n_timesteps"])
    start = time.time()
    resumed_from = checkpoint_timesteps(folder / "checkpoint")
    eval_freq = int(stage.get("eval_freq", -1))
    model = train_from_zoo(algo, settings["env"], folder, config, n_timesteps, seed=settings["seed"],
                           hyperparams=hyperparams, tensorboard_log=str(folder.parent / "tensorboard"),
                           checkpoint_every=max(n_timesteps // 10, 500), eval_freq=eval_freq,
                           eval_episodes=int(stage.get("eval_episodes", 5)), progress_bar=settings.get("progress", False))
    # the zoo's EvalCallback keeps the best evaluated model: DQN-style training is unstable, so that is
    # the one a zoo user would deploy (as `sb3-snn evaluate --load-best`)
    best = sorted((folder / "zoo").rglob("best_model.zip"), key=lambda path: path.stat().st_mtime)
    chosen = "best evaluated" if eval_freq > 0 and best else "final"
    if chosen == "final":
        model.save(folder / model_name)
    else:
        shutil.copyfile(best[-1], folder / model_name)
    curve = learning_curve(folder / "zoo")
    (folder / "learning_curve.json").write_text(json.dumps(curve))
    summary = {"algo": algo, "n_timesteps": int(model.num_timesteps), "model": chosen, "resumed_from_timestep": resumed_from,
               "train_seconds": round(time.time() - start, 1), "parameter_bytes": parameter_bytes(model.policy)}
    return StageOutcome(summary, [model_name, "learning_curve.json"])


def teacher_stage(settings: dict[str, Any], folder: Path) -> StageOutcome:
    """Train the teacher from its zoo config, or copy the given checkpoint."""
    teacher = settings["teacher"]
    if teacher.get("path"):
        source = Path(teacher["path"]).expanduser()
        if not source.is_file():
            raise FileNotFoundError(f"teacher.path {str(source)!r} not found (relative paths are read from {Path.cwd()})")
        shutil.copyfile(source, folder / "teacher.zip")
        model = load_model(teacher["algo"], folder / "teacher.zip")
        (folder / "learning_curve.json").write_text("[]")
        return StageOutcome({"algo": teacher["algo"], "given": str(teacher["path"]), "n_timesteps": int(model.num_timesteps),
                             "parameter_bytes": parameter_bytes(model.policy)}, ["teacher.zip", "learning_curve.json"])
    return _train(teacher["algo"], settings, teacher, folder, zoo_config(teacher["algo"]), teacher.get("hyperparams"),
                  "teacher.zip")


def sdn_stage(settings: dict[str, Any], folder: Path, teacher_path: Path) -> StageOutcome:
    """Distil a spiking student from the teacher (shipped ``configs/zoo/sdn.yml``)."""
    hyperparams = {**(settings["sdn"].get("hyperparams") or {}), "teacher": str(teacher_path.resolve())}
    return _train("sdn", settings, settings["sdn"], folder, zoo_config("sdn"), hyperparams, "student.zip")


def cvtc_stage(settings: dict[str, Any], folder: Path) -> StageOutcome:
    """Train a CVTC Q-network with Double DQN (shipped ``configs/zoo/cvtc.yml``)."""
    cvtc = settings["cvtc"]
    return _train(cvtc["algo"], settings, cvtc, folder, zoo_config("cvtc"), cvtc.get("hyperparams"), "cvtc.zip")


def conversion_stage(settings: dict[str, Any], folder: Path, teacher_path: Path) -> StageOutcome:
    """Convert the teacher to an IF network and sweep T and readouts (score, conversion rate, SynOps)."""
    from sb3_snn.conversion import convert
    from sb3_snn.conversion.evaluation import sweep

    conv, algo, seed = settings["conversion"], settings["teacher"]["algo"], settings["seed"]
    env = make_env(settings["env"], algo, seed)
    teacher = load_model(algo, teacher_path, env)
    policy = convert(teacher, env=env, percentile=conv["percentile"], timesteps=max(conv["timesteps"]),
                     n_calibration=conv["n_calibration"], seed=seed)
    policy.save(folder / "converted.pt")
    results = sweep(policy, teacher, env, timesteps=conv["timesteps"], readouts=conv["readouts"],
                    n_episodes=conv["sweep_episodes"], epsilon=settings["evaluation"]["epsilon"], seed=seed)
    rows = [{key: value for key, value in r.as_dict().items() if key not in ("scores", "firing_rates")} for r in results]
    (folder / "sweep.json").write_text(json.dumps(rows, indent=2))
    env.close()
    return StageOutcome({"percentile": conv["percentile"], "sweep": rows}, ["converted.pt", "sweep.json"])


def _agents(settings: dict[str, Any], out: Path) -> dict[str, tuple[Any, str]]:
    """Every trained agent of the run: name -> (acting object, how it acts)."""
    from sb3_snn.conversion import ConvertedQPolicy

    evaluation = settings["evaluation"]
    agents: dict[str, tuple[Any, str]] = {"teacher": (load_model(settings["teacher"]["algo"], out / "teacher/teacher.zip"), "ANN")}
    if (out / "sdn/student.zip").is_file():
        agents["sdn"] = (load_model("sdn", out / "sdn/student.zip"), "LIF student (distilled)")
    if (out / "conversion/converted.pt").is_file():
        converted = ConvertedQPolicy.load(out / "conversion/converted.pt", device="cpu")
        agents["converted"] = (converted.with_settings(evaluation["conversion_timesteps"], "robust"),
                               f"IF, T={evaluation['conversion_timesteps']}, robust readout")
    if settings.get("cvtc") and (out / "cvtc/cvtc.zip").is_file():
        agents["cvtc"] = (load_model(settings["cvtc"]["algo"], out / "cvtc/cvtc.zip"), "temporal (CVTC, beta)")
    return agents


def spiking_policy(agent: Any) -> Any:
    """The object that has ``spiking_description()``: the agent itself or its policy."""
    return agent if hasattr(agent, "spiking_description") else getattr(agent, "policy", agent)


def evaluation_stage(settings: dict[str, Any], folder: Path, out: Path) -> StageOutcome:
    """Play every agent: score, agreement with the teacher's greedy action on the agent's frames, size."""
    from sb3_snn.conversion.evaluation import run_episodes
    from sb3_snn.spiking import count_operations, simulate

    evaluation, seed = settings["evaluation"], settings["seed"]
    agents = _agents(settings, out)
    teacher = agents["teacher"][0]
    rows, observations = [], {}
    for name, (agent, kind) in agents.items():
        env = make_env(settings["env"], settings["teacher"]["algo"], seed)
        run = run_episodes(agent, env, evaluation["episodes"], epsilon=evaluation["epsilon"], seed=seed,
                           reference=None if name == "teacher" else teacher)
        row = {"agent": name, "kind": kind, "mean_score": float(np.mean(run["scores"])),
               "std_score": float(np.std(run["scores"])), "episodes": len(run["scores"]),
               "agreement": 1.0 if name == "teacher" else run["matches"] / max(run["n_steps"], 1),
               "parameter_bytes": parameter_bytes(spiking_policy(agent))}
        policy = spiking_policy(agent)
        if hasattr(policy, "spiking_description"):
            description = policy.spiking_description()
            if not any(layer.neuron is not None and layer.neuron.model == "temporal" for layer in description.layers):
                obs = _observations(policy, env, 64, seed)
                observations[name] = obs
                row["synops_per_action"] = count_operations(description, simulate(description, obs).spike_counts).synops
        env.close()
        rows.append(row)
    np.savez(folder / "observations.npz", **observations)
    (folder / "evaluation.json").write_text(json.dumps(rows, indent=2))
    return StageOutcome({"rows": rows}, ["evaluation.json", "observations.npz"])


def _observations(policy: Any, env: VecEnv, n: int, seed: int) -> np.ndarray:
    """``n`` preprocessed observations from the policy playing ``env`` (its network's input)."""
    import torch as th

    env.seed(seed)
    obs, frames = env.reset(), []
    for _ in range(n):
        tensor, _ = policy.obs_to_tensor(obs)
        frames.append(_network_input(policy, tensor))
        actions, _ = policy.predict(obs, deterministic=True)
        obs, *_ = env.step(actions)
    return th.cat(frames).cpu().numpy()


def _network_input(policy: Any, obs: Any) -> Any:
    """The tensor the spiking description's first layer sees (the policy's own preprocessing)."""
    from stable_baselines3.common.preprocessing import preprocess_obs

    if hasattr(policy, "preprocess"):
        return policy.preprocess(obs)
    return preprocess_obs(obs, policy.observation_space, normalize_images=getattr(policy, "normalize_images", True))


def export_stage(settings: dict[str, Any], folder: Path, out: Path) -> StageOutcome:
    """Compile the chosen spiking agents for the backend; save deployments and reports."""
    from sb3_snn import backends

    export = settings["export"]
    backend = backends.load(export["backend"], **(export.get("options") or {}))  # e.g. chip spec overrides
    agents = _agents(settings, out)
    with np.load(out / "evaluation/observations.npz", allow_pickle=False) as saved:
        observations = {name: saved[name] for name in saved.files}
    summary: dict[str, Any] = {"backend": export["backend"], "agents": {}}
    outputs = []
    for name in export["agents"]:
        if name not in agents or name not in observations:
            continue
        policy = spiking_policy(agents[name][0])
        try:
            deployment = backend.compile(policy.spiking_description(), observations[name][: export["n_calibration"]],
                                         action_rate_hz=export["action_rate_hz"])
        except (backends.FitError, backends.UnsupportedNetworkError) as exc:  # a real limit of the target: said, not fatal
            (folder / f"{name}_report.txt").write_text(f"not exported to {export['backend']}: {exc}\n")
            outputs.append(f"{name}_report.txt")
            summary["agents"][name] = {"error": str(exc), "error_type": type(exc).__name__}
            continue
        report = deployment.report()
        deployment.save(folder / name)
        (folder / f"{name}_report.txt").write_text(str(report))
        outputs.append(f"{name}_report.txt")
        summary["agents"][name] = {"metrics": report.metrics, "report": report.to_dict()}
    return StageOutcome(summary, outputs)

"""Conversion rate, score and SynOps of a converted policy, and sweeps over ``T`` and readouts.

Conversion rate (Tan et al. 2021): the share of steps where the SNN's greedy action equals the
source model's greedy action on the same frame, while the SNN is the one acting (epsilon-greedy,
epsilon = 0.05). For Box actions (a converted TD3 / DDPG / SAC actor) exact agreement means nothing: the
action error takes its place, ``mean_i |a_i - a_source,i| / (high_i - low_i)`` per step on the states the
SNN meets, and the SNN acts without exploration (epsilon = 0). SynOps per action come from
:func:`sb3_snn.spiking.count_operations`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv

from gymnasium import spaces

from sb3_snn.common.evaluation import ActionError, Agreement, CostSum, play_episodes
from sb3_snn.conversion.policies import ConvertedQPolicy
from sb3_snn.spiking.synops import count_operations


@dataclass
class ConversionResult:
    """One (T, readout) setting evaluated over episodes.

    :param timesteps: ``T``
    :param readout: ``"robust"``, ``"rate"`` or ``"ann"`` (the source model itself)
    :param scores: per-episode return (the Monitor's unclipped return when available)
    :param mean_score: mean of ``scores``
    :param std_score: standard deviation of ``scores``
    :param conversion_rate: share of steps with SNN greedy action == source greedy action (``None`` for Box
        actions: see ``action_error``)
    :param n_steps: agent steps evaluated
    :param synops_per_action: synaptic operations per action (spike-driven, all layers)
    :param input_macs_per_action: dense MACs of the analog-input layer over the ``T`` steps
    :param ann_macs: MACs of one dense ANN evaluation
    :param firing_rates: per layer, spikes per neuron per step (mean over steps)
    :param seconds_per_action: wall time of one SNN simulation (batch of one env step)
    :param truncated_episodes: episodes stopped at ``max_episode_steps``
    :param rounding: the policy's ``rounding`` (``"floor"``: the paper's neurons)
    :param action_error: Box actions: mean ``|a - a_source| / (high - low)`` per step (``None`` for Discrete)
    :param carry_over: whether hidden membranes were kept between actions
    """

    timesteps: int
    readout: str
    scores: list[float]
    mean_score: float
    std_score: float
    conversion_rate: float | None
    n_steps: int
    synops_per_action: float = 0.0
    input_macs_per_action: float = 0.0
    ann_macs: int = 0
    firing_rates: dict[str, float] = field(default_factory=dict)
    seconds_per_action: float = 0.0
    truncated_episodes: int = 0
    rounding: str = "floor"
    action_error: float | None = None
    carry_over: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)


def _epsilon(epsilon: float | None, env: gym.Env | VecEnv) -> float:
    """The exploration of a run: ``epsilon``, or by default 0.05 (the paper's) for Discrete actions, 0 for Box."""
    if epsilon is not None:
        return epsilon
    return 0.05 if isinstance(env.action_space, spaces.Discrete) else 0.0


def run_episodes(
    actor: Any,
    env: gym.Env | VecEnv,
    n_episodes: int,
    epsilon: float | None = None,
    seed: int | None = 0,
    reference: Any | None = None,
    max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """Play ``n_episodes`` with ``actor`` acting epsilon-greedily (one env at a time), on
    :func:`sb3_snn.common.evaluation.play_episodes`.

    A :class:`ConvertedQPolicy` (or :class:`ConvertedActorPolicy`) acts through one simulation per step,
    whose spike counts give that step's SynOps (and whose time is the actor's time); with ``carry_over`` its
    hidden membranes go from one step to the next and are zeroed at every episode start. Anything else acts
    through ``predict``.

    :param actor: a :class:`ConvertedQPolicy` or anything with SB3's ``predict``
    :param env: environment (a single-env ``VecEnv`` or a ``gym.Env``)
    :param n_episodes: episodes to play
    :param epsilon: probability of a uniformly random action (``None``: 0.05 for Discrete actions, 0 for Box)
    :param seed: episode ``i`` uses ``seed + i`` for the environment and for its epsilon draws, so an
        episode replays the same whatever its place in a run (``None``: unseeded)
    :param reference: model whose greedy action is compared on every frame (conversion rate, or the action
        error for Box actions)
    :param max_episode_steps: stop an episode after this many agent steps (counted as truncated)
    :return: dict with ``scores``, ``matches``, ``n_steps``, ``truncated``, ``seconds``, ``action_error``
        (Box actions with a reference, else ``None``), and for a spiking actor ``cost`` (summed
        :class:`CostReport` fields) and ``rates``
    """
    hooks: list[Any] = []
    box = isinstance(env.action_space, spaces.Box)
    agreement = Agreement(reference) if reference is not None and not box else None
    action_error = ActionError(reference, env.action_space) if reference is not None and box else None  # type: ignore[arg-type]
    cost = None
    act: Any = actor
    on_episode_start = None
    if isinstance(actor, ConvertedQPolicy):  # this method's own policy: SynOps from the simulation that acts
        description = actor.spiking_description()
        last: list[Any] = []
        state: list[dict[int, th.Tensor] | None] = [None]  # carried-over hidden membranes

        def act(obs: np.ndarray) -> np.ndarray:
            obs_tensor, _ = actor.obs_to_tensor(obs)
            with th.no_grad():
                simulation = actor.simulate(obs_tensor, initial_potential=state[0])  # type: ignore[arg-type]  # one tensor
            last[:] = [simulation]
            if actor.carry_over:
                state[0] = actor.carried_membranes(simulation)
            actions = actor.actions_of(simulation.outputs).cpu().numpy()
            return actor.unscale_action(actions) if actor.squash_output else actions

        def on_episode_start() -> None:
            state[0] = None

        cost = CostSum(lambda obs: count_operations(description, actor.spike_counts_by_name(last[0])))
        hooks.append(cost)
    hooks += [hook for hook in (agreement, action_error) if hook is not None]  # compared on this frame
    run = play_episodes(act, env, n_episodes, epsilon=_epsilon(epsilon, env), seed=seed,
                        max_episode_steps=max_episode_steps, hooks=hooks, on_episode_start=on_episode_start)
    out: dict[str, Any] = {"scores": run.scores, "matches": agreement.matches if agreement else 0,
                           "n_steps": run.n_steps, "truncated": run.truncated, "seconds": run.seconds,
                           "action_error": action_error.mean if action_error is not None else None}
    if cost is not None:
        out.update(synops=cost.synops, input_macs=cost.input_macs,
                   rates={k: v / max(run.n_steps, 1) for k, v in cost.rates.items()},
                   ann_macs=count_operations(description, {}).ann_macs)
    return out


def evaluate_conversion(
    policy: ConvertedQPolicy,
    source: Any,
    env: gym.Env | VecEnv,
    n_episodes: int = 10,
    epsilon: float | None = None,
    seed: int | None = 0,
    max_episode_steps: int | None = None,
) -> ConversionResult:
    """Score, conversion rate (or action error, for Box actions) and SynOps of ``policy`` acting in ``env``.

    :param policy: the converted policy (its ``timesteps``, ``readout`` and ``carry_over`` are used)
    :param source: the source model (``predict``), compared on every frame the SNN sees
    :param env: a single environment
    :param n_episodes: episodes
    :param epsilon: exploration of the acting SNN (``None``: 0.05 for Discrete actions, 0 for Box)
    :param seed: environment / epsilon seed
    :param max_episode_steps: cap on agent steps per episode
    """
    run = run_episodes(policy, env, n_episodes, epsilon, seed, reference=source, max_episode_steps=max_episode_steps)
    steps = max(run["n_steps"], 1)
    return ConversionResult(
        timesteps=policy.timesteps, readout=policy.readout, scores=run["scores"],
        mean_score=float(np.mean(run["scores"])), std_score=float(np.std(run["scores"])),
        conversion_rate=None if run["action_error"] is not None else run["matches"] / steps, n_steps=run["n_steps"],
        synops_per_action=run["synops"] / steps, input_macs_per_action=run["input_macs"] / steps,
        ann_macs=run["ann_macs"], firing_rates=run["rates"], seconds_per_action=run["seconds"] / steps,
        truncated_episodes=run["truncated"], rounding=policy.rounding, action_error=run["action_error"],
        carry_over=policy.carry_over,
    )


def evaluate_source(
    source: Any, env: gym.Env | VecEnv, n_episodes: int = 10, epsilon: float | None = None, seed: int | None = 0,
    max_episode_steps: int | None = None,
) -> ConversionResult:
    """The source model's own score under the same protocol (``readout="ann"``, conversion rate 1, action error 0).

    :param source: the source model (``predict``)
    :param env: a single environment
    :param n_episodes: episodes
    :param epsilon: exploration (``None``: 0.05 for Discrete actions, 0 for Box)
    :param seed: environment / epsilon seed
    :param max_episode_steps: cap on agent steps per episode
    """
    run = run_episodes(source, env, n_episodes, epsilon, seed, max_episode_steps=max_episode_steps)
    return ConversionResult(
        timesteps=0, readout="ann", scores=run["scores"], mean_score=float(np.mean(run["scores"])),
        std_score=float(np.std(run["scores"])), conversion_rate=1.0, n_steps=run["n_steps"],
        seconds_per_action=run["seconds"] / max(run["n_steps"], 1), truncated_episodes=run["truncated"],
        action_error=0.0 if isinstance(env.action_space, spaces.Box) else None,
    )


def sweep(
    policy: ConvertedQPolicy,
    source: Any,
    env: gym.Env | VecEnv,
    timesteps: list[int] | tuple[int, ...] = (100, 500),
    readouts: list[str] | tuple[str, ...] = ("robust", "rate"),
    include_source: bool = True,
    roundings: list[str] | tuple[str, ...] | None = None,
    **kwargs: Any,
) -> list[ConversionResult]:
    """Evaluate every (T, rounding, readout) combination (and the source model itself first).

    :param policy: converted policy (its weights are reused for every setting)
    :param source: the source model
    :param env: a single environment
    :param timesteps: ``T`` values
    :param readouts: readouts
    :param include_source: add the source model's own row (``readout="ann"``)
    :param roundings: ``rounding`` values (default: the policy's own)
    :param kwargs: passed to :func:`evaluate_conversion` (``n_episodes``, ``epsilon``, ``seed``, ...)
    """
    results = []
    if include_source:
        results.append(evaluate_source(source, env, **kwargs))
    for steps in timesteps:
        for rounding in roundings or (policy.rounding,):
            for readout in readouts:
                setting = policy.with_settings(steps, readout, rounding)
                results.append(evaluate_conversion(setting, source, env, **kwargs))
    return results


def format_table(results: list[ConversionResult]) -> str:
    """A plain-text table of sweep results."""
    header = (f"{'T':>5} {'readout':>13} {'rounding':>8} {'score':>16} {'conv. rate':>10} {'SynOps/action':>14} "
              f"{'s/action':>9} {'steps':>7}")
    lines = [header, "-" * len(header)]
    for r in results:
        t = "-" if r.readout == "ann" else str(r.timesteps)
        synops = "-" if r.readout == "ann" else f"{r.synops_per_action:.3g}"
        rounding = "-" if r.readout == "ann" else r.rounding
        agreement = (f"{100 * r.conversion_rate:>9.2f}%" if r.conversion_rate is not None
                     else f"{'err ' + format(100 * (r.action_error or 0.0), '.2f'):>9}%")  # Box: action error
        lines.append(
            f"{t:>5} {r.readout:>13} {rounding:>8} {r.mean_score:>8.2f} ± {r.std_score:<5.2f} "
            f"{agreement} {synops:>14} {r.seconds_per_action:>9.4f} {r.n_steps:>7}"
        )
    return "\n".join(lines)


def held_out_sweep(
    policy: ConvertedQPolicy, model: Any, env: gym.Env | VecEnv, timesteps: list[int], n_states: int, seed: int
) -> list[dict[str, Any]]:
    """Conversion rate and SynOps per action at every T on ``n_states`` held-out states the teacher plays
    (epsilon 0.05, episodes seeded apart from the calibration's).

    :param policy: the converted policy (its weights are used at every T)
    :param model: the teacher
    :param env: its environment
    :param timesteps: the T values
    :param n_states: held-out states
    :param seed: seeds the teacher's episodes (offset from the calibration's)
    """
    from sb3_snn.conversion.convert import collect_calibration_frames
    from sb3_snn.conversion.extract import extract_network

    source = extract_network(model)
    states = collect_calibration_frames(source, env, n_states, 0.05, seed + 20_000)
    greedy = source.act(states)
    rows = []
    for steps in timesteps:
        setting = policy.with_settings(timesteps=steps)
        with th.no_grad():
            simulation = setting.simulate(th.as_tensor(states, device=setting.device))
        actions = setting.actions_of(simulation.outputs).cpu().numpy()
        if actions.ndim > 1:  # Box actions: no exact agreement (see the conversion docs' action error)
            continue
        synops = count_operations(setting.spiking_description(), setting.spike_counts_by_name(simulation)).synops
        rows.append({"timesteps": steps, "conversion_rate": float((actions == greedy).mean()), "n_states": n_states,
                     "synops_per_action": float(synops)})
    return rows


@dataclass
class BatchedRun:
    """Episodes played side by side by :func:`run_episodes_batched` (episode ``i`` seeded ``seed + i``).

    :param scores: per-episode return (the Monitor's, else the sum of rewards)
    :param lengths: per-episode agent steps
    :param matches: per episode, steps where the actor's greedy action equals the reference's
    :param truncated: per episode, whether ``max_episode_steps`` cut it
    :param synops: SynOps summed over every step of every episode (a converted policy; else 0)
    :param seconds: time spent in the actor
    """

    scores: list[float]
    lengths: list[int]
    matches: list[int]
    truncated: list[bool]
    synops: float = 0.0
    seconds: float = 0.0

    @property
    def conversion_rate(self) -> float:
        """Agreeing steps over all steps."""
        return sum(self.matches) / max(sum(self.lengths), 1)


def run_episodes_batched(
    actor: Any,
    venv: VecEnv,
    seed: int = 0,
    epsilon: float = 0.05,
    reference: Any | None = None,
    max_episode_steps: int | None = None,
) -> BatchedRun:
    """Play one episode in every env of ``venv`` at once, epsilon-greedily, each seeded as
    :func:`sb3_snn.common.evaluation.play_episodes` seeds its episode ``i`` (env seed ``seed + i``, its own
    epsilon generator seeded ``seed + i``, one uniform draw per step, then the random action), so episode
    ``i`` is the same as a one-env run's episode ``i`` and two actors meet the same starts and epsilon draws
    (paired episodes). The actor runs once per step on the batch of unfinished episodes; a
    :class:`ConvertedQPolicy` with ``carry_over`` keeps its membranes per episode, from rest at the start.

    :param actor: a :class:`ConvertedQPolicy`, or anything with SB3's ``predict``
    :param venv: ``n`` envs (``Monitor``-wrapped for Atari scores), one episode each; it is seeded and reset here
    :param seed: episode ``i`` uses ``seed + i``
    :param epsilon: probability of a uniformly random action (``Discrete`` actions)
    :param reference: compared on every frame (conversion rate)
    :param max_episode_steps: cut an episode after this many agent steps (its return so far is its score)
    """
    from stable_baselines3.common.monitor import Monitor

    from sb3_snn.common.models import greedy_actions

    if not isinstance(venv.action_space, spaces.Discrete):
        raise ValueError(f"run_episodes_batched needs a Discrete action space, got {venv.action_space}")
    n, n_actions = venv.num_envs, int(venv.action_space.n)
    monitored = all(venv.env_is_wrapped(Monitor))
    converted = isinstance(actor, ConvertedQPolicy)
    act = None if converted else greedy_actions(actor)
    ref = greedy_actions(reference) if reference is not None else None
    description = actor.spiking_description() if converted else None
    rngs = [np.random.default_rng(seed + i) for i in range(n)]
    venv.seed(seed)
    obs = venv.reset()
    active = np.ones(n, dtype=bool)
    scores, lengths, matches = np.zeros(n), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    truncated = np.zeros(n, dtype=bool)
    state: dict[int, th.Tensor] | None = None
    synops, seconds = 0.0, 0.0
    while active.any():
        rows = np.flatnonzero(active)
        start = time.perf_counter()
        if converted:
            obs_tensor = th.as_tensor(np.asarray(obs)[rows], device=actor.device)
            initial = None if state is None else {k: v[rows] for k, v in state.items()}
            with th.no_grad():
                simulation = actor.simulate(obs_tensor, initial_potential=initial)
            greedy = actor.actions_of(simulation.outputs).cpu().numpy().reshape(-1)
            if actor.carry_over:
                carried = actor.carried_membranes(simulation)
                if state is None:
                    state = {k: v.new_zeros((n, *v.shape[1:])) for k, v in carried.items()}
                for k, v in carried.items():
                    state[k][rows] = v
            assert description is not None
            synops += count_operations(description, actor.spike_counts_by_name(simulation)).synops * len(rows)
        else:
            assert act is not None
            greedy = act(np.asarray(obs)[rows])
        seconds += time.perf_counter() - start
        if ref is not None:
            matches[rows] += ref(np.asarray(obs)[rows]) == greedy
        actions = np.zeros(n, dtype=np.int64)
        for j, i in enumerate(rows):
            actions[i] = rngs[i].integers(n_actions) if rngs[i].random() < epsilon else int(greedy[j])
        obs, rewards, dones, infos = venv.step(actions)
        for i in rows:
            scores[i] += float(rewards[i])
            lengths[i] += 1
            if dones[i]:
                if monitored and "episode" not in infos[i]:
                    continue  # a life lost: the game goes on
                if monitored:
                    scores[i] = float(infos[i]["episode"]["r"])
                active[i] = False
            elif max_episode_steps is not None and lengths[i] >= max_episode_steps:
                truncated[i] = True
                active[i] = False
    return BatchedRun(scores.tolist(), lengths.tolist(), matches.tolist(), truncated.tolist(), synops, seconds)

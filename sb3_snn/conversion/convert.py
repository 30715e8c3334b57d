"""``convert()``: a trained SB3 Q-learning model -> :class:`ConvertedQPolicy` (Tan et al. 2021), or the
deterministic actor of a TD3 / DDPG / SAC model -> :class:`ConvertedActorPolicy`.

1. read the ReLU network behind the model (:mod:`sb3_snn.conversion.extract`);
2. collect calibration frames by letting the model play with epsilon = 0.05 (unless given);
3. ``lambda_l`` = global p-th percentile of layer ``l``'s activations; ``w_l <- w_l lambda_{l-1} /
   lambda_l``, ``b_l <- b_l / lambda_l`` (Rueckauer et al. 2017);
4. run the result as IF neurons (threshold 1, reset by subtraction) for ``T`` steps.

A continuous actor's output layer is left unnormalised (``lambda_L = 1``): its robust readout is its
time-averaged input current, which needs no range, so the readout is the actor's pre-activation itself
and the teacher's ``tanh`` and rescaling apply to it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.observations import check_finite, collect_observations
from sb3_snn.conversion.extract import SourceNetwork, extract_network
from sb3_snn.conversion.low_latency import LowLatencyOptions, check_method, converted_layers, fine_tune, preprocess_all
from sb3_snn.conversion.normalisation import normalise_layers, percentile_scales
from sb3_snn.conversion.policies import ConvertedActorPolicy, ConvertedQPolicy, layer_spec


def collect_calibration_frames(
    source: SourceNetwork, env: gym.Env | VecEnv, n_frames: int, epsilon: float = 0.05, seed: int | None = None
) -> np.ndarray:
    """Observations seen while the source network plays epsilon-greedily
    (:func:`sb3_snn.common.observations.collect_observations`).

    :param source: the extracted network (acts greedily on its own Q-values, or with its deterministic
        action for a continuous actor: :meth:`SourceNetwork.act`)
    :param env: environment (a ``VecEnv`` or a single ``gym.Env``)
    :param n_frames: number of observations to return
    :param epsilon: probability of a uniformly random action
    :param seed: seeds the environment and the epsilon draws
    """
    return collect_observations(env, n_frames, source.act, epsilon=epsilon, seed=seed)


def _calibration_obs(
    model: Any, source: SourceNetwork, env: gym.Env | VecEnv | None, n_calibration: int, epsilon: float,
    seed: int | None,
) -> np.ndarray:
    """Calibration frames played by ``source`` in ``env`` (default: the model's env), spaces checked."""
    if n_calibration < 1:
        raise ValueError(f"n_calibration must be at least 1 (frames to calibrate on), got {n_calibration}")
    if env is None:
        env = model.get_env() if hasattr(model, "get_env") else None
    if env is None:
        raise ValueError("convert() needs calibration_obs or an env (the model has none) to collect frames in")
    env_space = env.observation_space
    if getattr(env_space, "shape", None) != source.observation_space.shape or type(env_space) is not type(
            source.observation_space):
        raise ValueError(
            f"observation space mismatch: the model ({type(model).__name__}) was trained on {source.observation_space}, "
            f"the env given has {env_space}; pass the environment the model was trained on"
        )
    return collect_calibration_frames(source, env, n_calibration, epsilon, seed)


#: ``T`` of a ``"low_latency"`` conversion when none is given.
LOW_LATENCY_TIMESTEPS = 32


def _convert_low_latency(
    model: Any, source: SourceNetwork, env: gym.Env | VecEnv | None, calibration_obs: np.ndarray | th.Tensor | None,
    options: LowLatencyOptions, seed: int | None, settings: dict[str, Any],
) -> ConvertedQPolicy:
    """``convert(method="low_latency")``: fine-tune a QCFS copy on states the teacher plays, then convert it
    with thresholds = the learned levels (:mod:`sb3_snn.conversion.low_latency`)."""
    base = options.seed if seed is None else seed
    if calibration_obs is None:
        train_raw = _calibration_obs(model, source, env, options.n_states, options.epsilon, base)
        validation_raw = (_calibration_obs(model, source, env, options.n_validation, options.epsilon, base + 10_000)
                          if options.n_validation else train_raw[:0])
    else:  # given states: the last n_validation of them choose the epoch
        given = calibration_obs.cpu().numpy() if isinstance(calibration_obs, th.Tensor) else np.asarray(calibration_obs)
        if len(given) == 0:
            raise ValueError("calibration_obs is empty")
        cut = len(given) - min(options.n_validation, len(given) // 5)
        train_raw, validation_raw = given[:cut], given[cut:]
    check_finite(np.asarray(train_raw), "calibration_obs")
    percentile = settings.pop("percentile")
    if percentile != 99.9:
        options = LowLatencyOptions(**{**options.as_dict(), "init_percentile": percentile})
    train_x = preprocess_all(source, train_raw)
    validation_x = preprocess_all(source, validation_raw) if len(validation_raw) else None
    result = fine_tune(source, train_x, options, validation_x)
    layers, scales = converted_layers(result)
    metadata = {"source": type(model).__name__, "source_kind": source.kind, "conversion_method": "low_latency",
                "low_latency": options.as_dict(), "fine_tuning": result.summary(),
                "n_training_states": len(train_raw), "n_validation_states": len(validation_raw)}
    return _build_policy(source, layers, scales, metadata, **settings)


def convert(
    model: Any,
    env: gym.Env | VecEnv | None = None,
    calibration_obs: np.ndarray | th.Tensor | None = None,
    percentile: float = 99.9,
    timesteps: int | None = None,
    readout: str = "robust",
    n_calibration: int = 2000,
    epsilon: float = 0.05,
    seed: int | None = 0,
    threshold: float = 1.0,
    batch_size: int = 256,
    device: th.device | str = "cpu",
    rounding: str | None = None,
    carry_over: bool = False,
    method: str = "paper",
    low_latency: LowLatencyOptions | dict[str, Any] | None = None,
) -> ConvertedQPolicy:
    """Convert a trained DQN / DDQN / QR-DQN (or a discrete actor, or the actor of TD3 / DDPG / SAC) to an
    integrate-and-fire policy.

    :param model: an SB3 model or policy (see :func:`sb3_snn.conversion.extract.extract_network`)
    :param env: environment to collect calibration frames in (default: the model's own env)
    :param calibration_obs: raw observations to calibrate on instead of playing
        (``[n, *obs_shape]``, channel-last images allowed)
    :param percentile: ``p`` of the per-layer global percentile normalisation (99.9 - 99.99 is best)
    :param timesteps: simulation steps per action ``T`` (default: 500 for ``"paper"``,
        :data:`LOW_LATENCY_TIMESTEPS` for ``"low_latency"``)
    :param readout: ``"robust"`` (rate + leftover potential, the paper's), ``"rate"`` or ``"robust_hidden"``
        (not the paper's: also passes the last hidden layer's leftover potential on, see
        :class:`ConvertedQPolicy`); a continuous actor needs a signed one (not ``"rate"``)
    :param n_calibration: number of frames collected when ``calibration_obs`` is not given
    :param epsilon: exploration while collecting calibration frames
    :param seed: seed of the calibration run
    :param threshold: ``V_thr`` of every neuron; currents are not scaled by it (Tan et al. Eq. 1), so rates fall as
        ``1 / V_thr`` per layer, as with a higher normalisation percentile
    :param batch_size: calibration frames per forward pass
    :param device: device of the returned policy
    :param rounding: ``"floor"`` (the paper's neurons) or ``"round"`` (hidden neurons get ``V_thr / (2T)``
        of extra bias per step, so their spike counts round instead of flooring; see
        :class:`ConvertedQPolicy`); default ``"floor"`` for ``"paper"``, ``"round"`` for ``"low_latency"`` (its
        half-threshold initial membrane)
    :param carry_over: hidden membranes persist between actions (``predict(obs, state, episode_start)``,
        see :class:`ConvertedQPolicy`; not the paper's)
    :param method: ``"paper"`` (percentile normalisation of the teacher's own weights, Tan et al. 2021) or
        ``"low_latency"`` (a copy of the teacher fine-tuned with clip-floor-shift activations on states it
        plays, thresholds = the learned clipping levels, see :mod:`sb3_snn.conversion.low_latency`; ``percentile``
        is then only the thresholds' starting point and ``n_calibration`` is unused: the options say how many
        states)
    :param low_latency: options of the ``"low_latency"`` method (:class:`LowLatencyOptions` or a dict of its
        fields); refused with ``"paper"``
    :return: a :class:`ConvertedQPolicy` (``Discrete`` actions) or a :class:`ConvertedActorPolicy` (``Box``)
    """
    check_method(method)
    if method == "paper" and low_latency is not None:
        raise ValueError("low_latency options were given with method='paper'; pass method='low_latency'")
    timesteps = int(timesteps) if timesteps is not None else (500 if method == "paper" else LOW_LATENCY_TIMESTEPS)
    rounding = rounding if rounding is not None else ("floor" if method == "paper" else "round")
    source = extract_network(model)
    if source.squash is not None and readout == "rate":
        raise ValueError("a continuous actor needs a signed readout ('robust' or 'robust_hidden'), not 'rate'")
    if method == "low_latency":
        return _convert_low_latency(
            model, source, env, calibration_obs, LowLatencyOptions.from_any(low_latency), seed,
            dict(timesteps=timesteps, readout=readout, threshold=threshold, rounding=rounding, carry_over=carry_over,
                 percentile=percentile, device=device))
    raw = _calibration_obs(model, source, env, n_calibration, epsilon, seed) if calibration_obs is None else calibration_obs
    n_samples = len(raw)
    if n_samples == 0:
        raise ValueError("calibration_obs is empty")
    check_finite(raw.cpu().numpy() if isinstance(raw, th.Tensor) else np.asarray(raw), "calibration_obs")

    def batches() -> Iterator[th.Tensor]:
        for start in range(0, n_samples, batch_size):
            chunk = raw[start : start + batch_size]
            yield source.preprocess(chunk.cpu().numpy() if isinstance(chunk, th.Tensor) else np.asarray(chunk))

    scales = percentile_scales(source.layers, batches, n_samples, percentile)  # lambda_l, p-th percentile
    if source.squash is not None:
        scales[-1] = 1.0  # the readout is the pre-activation itself (module docstring)
    normalise_layers(source.layers, scales)
    metadata = {"source": type(model).__name__, "source_kind": source.kind, "conversion_method": "paper",
                "percentile": percentile, "n_calibration": n_samples, "calibration_epsilon": epsilon}
    return _build_policy(source, source.layers, scales, metadata, timesteps=timesteps, readout=readout,
                         threshold=threshold, rounding=rounding, carry_over=carry_over, device=device)


def _build_policy(
    source: SourceNetwork, layers: list[Any], scales: list[float], metadata: dict[str, Any], timesteps: int,
    readout: str, threshold: float, rounding: str, carry_over: bool, device: th.device | str,
) -> ConvertedQPolicy:
    """The policy around normalised ``layers``. Their currents are Tan et al.'s Eq. 1 ``W theta + b``, not scaled
    by the threshold (the paper rejects that scaling: it cancels the threshold), so a threshold ``V_thr != 1``
    divides every layer's rates by ``V_thr``, like a change of normalisation percentile."""
    settings: dict[str, Any] = dict(
        layer_specs=[layer_spec(layer) for layer in layers],
        layer_names=source.names,
        timesteps=timesteps,
        readout=readout,
        threshold=threshold,
        rounding=rounding,
        scales=scales,
        normalize_images=source.normalize_images,
        metadata=metadata,
        carry_over=carry_over,
    )
    policy: ConvertedQPolicy
    if isinstance(source.action_space, spaces.Box):
        policy = ConvertedActorPolicy(source.observation_space, source.action_space, squash=source.squash or "tanh",
                                      **settings)
    else:
        policy = ConvertedQPolicy(source.observation_space, source.action_space, **settings)
    with th.no_grad():
        for target, layer in zip(policy.layers, layers, strict=True):
            for name, value in layer.state_dict().items():
                getattr(target, name).copy_(value)
    return policy.to(device)

"""Hyperparameter samplers for rl_zoo3's ``-optimize``, found on the classes that define them.

An algorithm or a policy class brings its own search space with a class attribute::

    class MyPolicy(BasePolicy):
        hyperparameter_sampler = staticmethod(sample_my_policy_params)

with rl_zoo3's sampler signature ``fn(trial, n_actions, n_envs, additional_args) -> hyperparams``. No
registry group is needed: :func:`install_samplers` puts a :class:`ClassSampler` for every algorithm of
``rl_zoo3.utils.ALGOS`` into ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER``. When a trial starts, it

1. takes the algorithm's sampler (its ``hyperparameter_sampler``, else rl_zoo3's own sampler for that
   algorithm or for the stock algorithm it derives from),
2. takes the sampler of the zoo config's ``policy`` (alias or class), if that class defines one,
3. runs both and merges the results over the config: ``policy_kwargs`` = config's, then the
   algorithm's sampled keys, then the policy's (rl_zoo3 would otherwise replace the config's
   ``policy_kwargs`` as a whole, losing e.g. CVTC's ``q_sign``),
4. stores what was sampled (JSON) in the trial's user attribute :data:`SAMPLED_ATTR`, so that
   ``--trial-id`` and :func:`sb3_snn.zoo.tuning.best_zoo_entry` rebuild exactly that configuration.

The sampler needs the config's hyperparameters, which rl_zoo3 keeps on its ``ExperimentManager``;
:class:`TuningExperimentManager` exposes them to the sampler for the duration of each trial (``sb3-snn
train`` builds a subclass of it, :class:`sb3_snn.zoo.training.ResumableExperimentManager`; under a plain
``ExperimentManager`` the policy is unknown and only the algorithm's sampler runs). An algorithm whose
classes define no sampler keeps rl_zoo3's sampler unchanged.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_snn import registry

#: the trial user attribute holding the sampled hyperparameters (JSON-compatible)
SAMPLED_ATTR = "sb3_snn_sampled_hyperparams"

Sampler = Callable[[Any, int, int, dict[str, Any]], dict[str, Any]]

#: the zoo config's hyperparameters of the trial being sampled (set by TuningExperimentManager.objective)
_CONFIG: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("sb3_snn_zoo_config", default=None)


def resolve_policy(algo_class: type[BaseAlgorithm], policy: Any) -> type | None:
    """The policy class a zoo config names: a class, an alias of ``algo_class`` or a registered policy.

    :param algo_class: the algorithm
    :param policy: the config's ``policy`` value (``None`` when the config has none)
    """
    if policy is None or isinstance(policy, type):
        return policy
    aliases = getattr(algo_class, "policy_aliases", {})
    if policy in aliases:
        return aliases[policy]
    plugin = registry.plugins("policies").get(policy)
    return plugin.target if plugin is not None else None


def merge_sampled(config: dict[str, Any], *sampled: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a trial overrides: the sampled ones, later ones winning, with ``policy_kwargs``
    merged key by key over the config's (so keys no sampler touches keep the config's value).

    :param config: the zoo config's hyperparameters
    :param sampled: the samplers' results, in order of precedence (last wins)
    """
    merged: dict[str, Any] = {}
    policy_kwargs = dict(config.get("policy_kwargs") or {})
    touched = False
    for part in sampled:
        for key, value in part.items():
            if key == "policy_kwargs":
                policy_kwargs.update(value or {})
                touched = True
            else:
                merged[key] = value
    if touched:
        merged["policy_kwargs"] = policy_kwargs
    return merged


def _json_safe(value: Any) -> Any:
    """``value`` as JSON (tuples as lists); a value JSON cannot hold (a class) becomes its dotted name."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


class ClassSampler:
    """The ``HYPERPARAMS_SAMPLER`` entry of one algorithm: composes the algorithm's and the policy's
    samplers over the zoo config (see the module docstring).

    :param name: the algorithm id (``ddqn``, ``sdn``, ``dqn``, ...)
    :param algo_class: the algorithm class
    :param fallback: rl_zoo3's sampler for this algorithm, if it has one
    """

    def __init__(self, name: str, algo_class: type[BaseAlgorithm], fallback: Sampler | None) -> None:
        self.name, self.algo_class, self.fallback = name, algo_class, fallback

    def samplers(self, config: dict[str, Any]) -> tuple[Sampler | None, Sampler | None]:
        """The algorithm's and the policy's sampler for a zoo config (either may be ``None``).

        :param config: the zoo config's hyperparameters
        """
        algo_sampler = getattr(self.algo_class, "hyperparameter_sampler", None) or self.fallback
        policy_class = resolve_policy(self.algo_class, config.get("policy"))
        policy_sampler = getattr(policy_class, "hyperparameter_sampler", None) if policy_class else None
        return algo_sampler, policy_sampler

    def __call__(self, trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
        config = _CONFIG.get() or {}
        algo_sampler, policy_sampler = self.samplers(config)
        if algo_sampler is None and policy_sampler is None:
            raise ValueError(
                f"no hyperparameter sampler for algorithm {self.name!r} ({self.algo_class.__name__}) or policy "
                f"{config.get('policy')!r}: give one of the classes a `hyperparameter_sampler` attribute "
                "(see sb3_snn.zoo.samplers)")
        if policy_sampler is None and algo_sampler is self.fallback:
            return algo_sampler(trial, n_actions, n_envs, additional_args)  # type: ignore[misc]  # rl_zoo3's own
        args = {**additional_args, "hyperparams": config}
        parts = [s(trial, n_actions, n_envs, args) for s in (algo_sampler, policy_sampler) if s is not None]
        merged = merge_sampled(config, *parts)
        trial.set_user_attr(SAMPLED_ATTR, _json_safe(merge_sampled({}, *parts)))
        return merged


class TuningExperimentManager(ExperimentManager):
    """rl_zoo3's ``ExperimentManager`` that lets :class:`ClassSampler` see the zoo config during a trial
    and loads ``--trial-id`` from what the trial stored (:data:`SAMPLED_ATTR`), converter or not."""

    def objective(self, trial: Any) -> float:
        """rl_zoo3's objective, with the config's hyperparameters visible to the sampler."""
        token = _CONFIG.set(self._hyperparams)
        try:
            return super().objective(trial)
        finally:
            _CONFIG.reset(token)

    def hyperparameters_optimization(self) -> None:
        """rl_zoo3's study loop; a storage that rl_zoo3 cannot open gets a clear error first."""
        if self.storage is not None and not self.storage.endswith(".log") and "://" not in self.storage:
            raise ValueError(f"--storage {self.storage!r}: rl_zoo3's -optimize takes a journal file ending in .log "
                             "or a database URL (postgresql://user@host:port/db)")
        if self.storage is not None and "://" in self.storage:
            from sb3_snn.zoo.storage import open_storage

            open_storage(self.storage, heartbeat=False)  # creates Optuna's tables safely when workers start together
        super().hyperparameters_optimization()

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """rl_zoo3's, but ``--trial-id`` (trial 0 included) applies the trial's stored sampled values
        (:data:`SAMPLED_ATTR`) with ``policy_kwargs`` merged over the config's, then ``-params`` again."""
        trial_id, self.trial_id = self.trial_id, None
        try:
            hyperparams, saved = super().read_hyperparameters()
        finally:
            self.trial_id = trial_id
        if not (self.storage and self.study_name and trial_id is not None):
            return hyperparams, saved
        sampled = self.load_trial(self.storage, self.study_name, trial_id)
        if "policy_kwargs" in sampled:
            sampled["policy_kwargs"] = merge_policy_kwargs(hyperparams.get("policy_kwargs"), sampled["policy_kwargs"])
        hyperparams.update({**sampled, **(self.custom_hyperparams or {})})
        return hyperparams, dict(sorted(hyperparams.items()))

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict[str, Any]:
        """The sampled hyperparameters of trial ``trial_id`` (default: the best) as stored by
        :class:`ClassSampler`; a trial without them goes through rl_zoo3's converter."""
        import optuna

        from sb3_snn.zoo.storage import open_storage

        study = optuna.load_study(storage=open_storage(storage, heartbeat=False), study_name=study_name)
        trial = study.trials[trial_id] if trial_id is not None else study.best_trial
        if SAMPLED_ATTR not in trial.user_attrs:
            return super().load_trial(storage, study_name, trial_id, convert)
        return dict(trial.user_attrs[SAMPLED_ATTR])


def merge_policy_kwargs(config_value: Any, sampled: dict[str, Any]) -> Any:
    """``policy_kwargs`` of the config with the sampled keys replaced: a dict when the config gives a dict
    (or nothing), else a zoo-config expression ``"{**(dict(...)), **{...}}"`` that rl_zoo3 evaluates.

    :param config_value: the config's ``policy_kwargs`` (a dict, a ``"dict(...)"`` string or ``None``)
    :param sampled: the sampled ``policy_kwargs`` keys
    """
    if config_value is None or isinstance(config_value, dict):
        return {**(config_value or {}), **sampled}
    return f"{{**({config_value}), **{sampled!r}}}"


def install_samplers(algos: dict[str, type[BaseAlgorithm]]) -> None:
    """Put a :class:`ClassSampler` for every algorithm of ``algos`` into rl_zoo3's ``HYPERPARAMS_SAMPLER``
    (keeping rl_zoo3's own sampler as the fallback; an algorithm derived from a stock one falls back to
    the stock one's). Idempotent.

    :param algos: rl_zoo3's ``ALGOS`` table (registered algorithms included)
    """
    from rl_zoo3 import hyperparams_opt

    table = hyperparams_opt.HYPERPARAMS_SAMPLER
    stock = {name: (fn.fallback if isinstance(fn, ClassSampler) else fn) for name, fn in table.items()}
    for name, algo_class in algos.items():
        fallback = stock.get(name)
        if fallback is None:  # a derived algorithm: the sampler of the stock algorithm it extends
            fallback = next((stock[base] for base, base_class in algos.items()
                             if base in stock and base_class is not algo_class and issubclass(algo_class, base_class)),
                            None)
        table[name] = ClassSampler(name, algo_class, fallback)

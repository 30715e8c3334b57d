"""What several methods share: policy files (:mod:`sb3_snn.common.policy_io`) and the like.

- :mod:`sb3_snn.common.models`: the acting network of any SB3 model, its scores and parameter bytes,
  loading a model zip of a known or inferred algorithm;
- :mod:`sb3_snn.common.evaluation`: one seeded epsilon-greedy episode loop with per-step hooks;
- :mod:`sb3_snn.common.observations`: collecting observations by playing, raw observation -> network input.
"""

from sb3_snn.common.evaluation import Agreement, CostSum, EpisodeRun, play_episodes
from sb3_snn.common.models import acting_modules, acting_network, acting_scores, greedy_actions, load_model, parameter_bytes
from sb3_snn.common.observations import collect_observations, description_input, network_input

__all__ = [
    "Agreement", "CostSum", "EpisodeRun", "acting_modules", "acting_network", "acting_scores", "collect_observations",
    "description_input", "greedy_actions", "load_model", "network_input", "parameter_bytes", "play_episodes",
]

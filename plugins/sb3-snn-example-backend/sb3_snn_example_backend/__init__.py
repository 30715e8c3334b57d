"""``example``: a minimal sb3-snn backend plugin, written to be copied.

It follows the backend flow of :mod:`sb3_snn.backends` with the smallest possible target:

- **check** (:mod:`.check`): refuse what the target cannot run (temporal neurons) or hold (more
  neurons than a budget), with the API's :class:`~sb3_snn.backends.UnsupportedNetworkError` /
  :class:`~sb3_snn.backends.FitError`;
- **map / build** (:mod:`.backend`): nothing to map and nothing to quantise; the "compiled" network
  is the float description itself, run by :func:`~sb3_snn.backends.reference_simulate`;
- **report**: a summary and a per-layer table, plus the standard ``metrics``;
- **save / load**: :func:`~sb3_snn.backends.write_artifact` / :func:`~sb3_snn.backends.read_artifact`
  (JSON + NPZ, checksummed, no pickle).

The plugin imports only the public API, ``sb3_snn.backends``.
"""

from sb3_snn_example_backend.backend import FORMAT, FORMAT_VERSION, ExampleBackend, ExampleDeployment
from sb3_snn_example_backend.check import check_network, count_resources

__all__ = ["FORMAT", "FORMAT_VERSION", "ExampleBackend", "ExampleDeployment", "check_network", "count_resources"]

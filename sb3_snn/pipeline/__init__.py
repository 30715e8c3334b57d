"""The whole sb3-snn pipeline: teacher -> SDN student, converted SNN, CVTC agent -> evaluation -> export.

Settings are checked before anything runs (:func:`validate_settings`). Every stage writes its outputs (with
a record of their hashes) to the results folder; a rerun skips a stage whose key (settings, the hashes of
its input files and of the earlier stages' outputs) is unchanged, and training stages resume from their
last checkpoint.
"""

from sb3_snn.pipeline.config import PipelineConfigError, load_config, validate_settings
from sb3_snn.pipeline.run import run_pipeline

__all__ = ["PipelineConfigError", "load_config", "run_pipeline", "validate_settings"]

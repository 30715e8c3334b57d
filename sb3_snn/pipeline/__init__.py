"""The whole sb3-snn pipeline: teacher -> SDN student, converted SNN, CVTC agent -> evaluation -> export.

Resumable: every stage writes its outputs (with a record of their hashes) to the results folder,
reruns skip valid stages, and training stages resume from their last checkpoint.
"""

from sb3_snn.pipeline.config import load_config
from sb3_snn.pipeline.run import run_pipeline

__all__ = ["load_config", "run_pipeline"]

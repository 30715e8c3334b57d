"""Double DQN."""

from sb3_snn.ddqn.ddqn import DDQN, double_q_target

__all__ = ["DDQN", "double_q_target"]

"""The ``sb3-snn`` runner: rl_zoo3 plus the sb3-snn registry."""

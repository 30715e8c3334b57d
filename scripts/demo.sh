#!/usr/bin/env bash
# The README's main command: install, then train Double DQN on CartPole-v1 from the zoo config and
# evaluate it over 10 episodes (logs in ./logs, TensorBoard in ./tb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/sb3-snn train --algo ddqn --env CartPole-v1 -conf zoo_configs/ddqn.yml -tb tb --seed 0 --num-threads 1
.venv/bin/sb3-snn evaluate --algo ddqn --env CartPole-v1 -f logs --episodes 10 --json results/ddqn_cartpole_eval.json

#!/usr/bin/env bash
# The README's main command: install, then run the whole pipeline on CartPole-v1 (CPU, ~10 min on
# 2 cores): train a DQN teacher -> distil an SDN student -> convert the teacher to an IF network ->
# train a CVTC agent with DDQN -> evaluate all four -> export the spiking ones to the NC64C model ->
# print one table, write it with plots to results/CartPole-v1. Extra arguments go to
# `sb3-snn pipeline` (e.g. --env PongNoFrameskip-v4 --teacher ../shared/fixtures/ppo_pong/ppo_pong.zip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/sb3-snn pipeline "$@"

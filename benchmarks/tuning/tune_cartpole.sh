#!/usr/bin/env bash
# Tunes CVTC and SDN on CartPole-v1 with two workers sharing one Optuna journal file, then trains the best
# configuration and the shipped zoo configuration on three seeds each (benchmarks/tuning/compare.py):
#   python benchmarks/tuning/compare.py OUT_DIR --method sdn --study-name sdn-cartpole --teacher TEACHER_ZIP
#   python benchmarks/tuning/compare.py OUT_DIR --method cvtc --study-name cvtc-cartpole
# Trials are shorter than the configs' runs (SDN 10k of 20k steps, CVTC 25k of 50k) so that 30 trials per
# method fit a 2-core machine; the comparison trains both configurations for the configs' full budget.
#   bash benchmarks/tuning/tune_cartpole.sh OUT_DIR TEACHER_ZIP
# TEACHER_ZIP: a plain-SB3 DQN trained with rl_zoo3's CartPole settings (the SDN teacher).
set -euo pipefail
OUT=${1:?output folder}
TEACHER=$(readlink -f "${2:?teacher zip}")
TRIALS=${TRIALS:-30}
mkdir -p "$OUT"
cd "$OUT"
common=(--env CartPole-v1 -optimize --max-total-trials "$TRIALS" --n-trials "$TRIALS" --n-evaluations 2
        --eval-episodes 10 --no-optim-plots --storage tune.log --sampler tpe --pruner median
        --n-startup-trials 8 -f logs)
worker() {
  sb3-snn train --algo sdn -conf sdn --teacher "$TEACHER" -n 10000 --study-name sdn-cartpole "${common[@]}" --seed "$1"
  sb3-snn train --algo ddqn -conf cvtc -n 25000 --study-name cvtc-cartpole "${common[@]}" --seed "$1" --num-threads 1
}
worker 1 > worker1.out 2>&1 &
sleep 20
worker 2 > worker2.out 2>&1 &
wait

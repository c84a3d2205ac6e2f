#!/usr/bin/env bash
# Data-parallel scaling of `recur train` on this machine (issue 17): a w3-sized model (LSTM,
# emb 128, encoder 2 × 256 bidirectional, decoder 2 × 512, Bahdanau 256, no dropout; the
# shapes of `recur bench`'s w3) trained on the bundled Dakshina lexicon with the same global
# batch three ways, and the training tokens/s of each:
#
#   A  1 rank  × 1 thread    recur --threads 1 train ...
#   B  1 rank  × 2 threads   recur --threads 2 train ...
#   C  2 ranks × 1 thread    mpirun -np 2 recur --threads 1 train ...
#   D  2 independent 1-thread runs at once, each on half the global batch (no exchange)
#
# It prints the three rates and the three numbers of the issue's targets: C/A (>= 1.8),
# C/B (>= 1.0) and the largest relative difference of the first 50 step losses of C and A
# (<= 1e-4). Tokens/s = the target tokens of all steps (log.jsonl) / the wall time of the
# training loop ("N steps in T s"; data loading and process start are not counted).
#
# Usage: bash bench/mpi_scaling.sh [-s STEPS] [-b MAX_TOKENS]
#   -s optimizer steps per run (default 60, >= 50)  -b global batch token budget (default 2560,
#   w3's 64 sentences × 20 tokens per rank)
# Needs target/release/recur built with `cargo build --release -p recur-cli --features mpi`
# and Open MPI's mpirun. MPIRUN_ARGS adds mpirun options (e.g. "--bind-to none" on a machine
# where other jobs hold a core). Never run by CI (a minute or two on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=60; BUDGET=2560
while getopts "s:b:" o; do
  case $o in
    s) STEPS=$OPTARG ;; b) BUDGET=$OPTARG ;;
    *) sed -n 16,22p "$0"; exit 2 ;;
  esac
done
RECUR=${RECUR:-target/release/recur}
# Shared-memory transfers without the single-copy (CMA) mechanism: a 28.7 MB allreduce between
# two ranks of this machine took 7.7 ms instead of 11.3 (an MPI_Allreduce loop in C, 25 runs).
MPIRUN_ARGS=${MPIRUN_ARGS---mca btl_vader_single_copy_mechanism none}
[ -x "$RECUR" ] || { echo "missing $RECUR: cargo build --release -p recur-cli --features mpi" >&2; exit 1; }
WORK=$(mktemp -d /tmp/recur-mpi-scaling.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/w3.toml" <<EOF
[data]
train = "$PWD/data/dakshina_hi/lexicons/hi.translit.sampled.train.tsv"
src_col = 1
tgt_col = 0
lowercase_src = true
max_src_len = 30
max_tgt_len = 30

[model]
cell = "lstm"
emb_dim = 128
hidden_size = 256
layers = 2
bidirectional = true
attention = "bahdanau"
attn_dim = 256
dropout = 0.0

[train]
max_tokens = $BUDGET
max_steps = $STEPS
epochs = 100
EOF

# Runs `recur train` (after the given launcher words) into $WORK/$1; prints tokens/s.
rate() {
  local out=$WORK/$1; shift
  local summary
  # shellcheck disable=SC2086
  summary=$("$@" train --quiet --config "$WORK/w3.toml" --out "$out" ${TRAIN_ARGS:-})
  local seconds tokens
  seconds=$(sed -n 's/.* steps in \([0-9.]*\) s.*/\1/p' <<<"$summary")
  tokens=$(grep '"event":"step"' "$out/log.jsonl" | sed 's/.*"tokens":\([0-9]*\).*/\1/' | paste -sd+ | bc)
  echo "$tokens / $seconds" | bc -l
}

# The first 50 step losses of a run, one per line.
losses() {
  grep '"event":"step"' "$WORK/$1/log.jsonl" | head -50 | sed 's/.*"train_loss":\([^,]*\),.*/\1/'
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
A=$(rate one-t1 "$RECUR" --threads 1)
B=$(rate one-t2 "$RECUR" --threads 2)
# shellcheck disable=SC2086
# RECUR_MPI_STATS=1: each rank prints its time in the allreduce (stderr).
C=$(RECUR_MPI_STATS=1 rate two-t1 mpirun --allow-run-as-root --oversubscribe -x RECUR_MPI_STATS ${MPIRUN_ARGS:-} -np 2 "$RECUR" --threads 1)
# D: what two ranks could reach here if the exchange and the work every rank repeats cost
# nothing: two independent 1-thread runs at the same time, each on half the global batch (as a
# rank's share), sharing the machine's caches and memory bandwidth as the two ranks do.
HALF="--set train.max_tokens=$((BUDGET / 2))"
TRAIN_ARGS=$HALF rate half-a "$RECUR" --threads 1 > "$WORK/d1" &
TRAIN_ARGS=$HALF rate half-b "$RECUR" --threads 1 > "$WORK/d2" &
wait
D=$(echo "$(cat "$WORK/d1") + $(cat "$WORK/d2")" | bc -l)
DIFF=$(paste <(losses one-t1) <(losses two-t1) | awk '{d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.3g", m}')
printf 'A 1 rank x 1 thread   %8.0f tokens/s\n' "$A"
printf 'B 1 rank x 2 threads  %8.0f tokens/s\n' "$B"
printf 'C 2 ranks x 1 thread  %8.0f tokens/s\n' "$C"
printf 'C/A = %.2f (target >= 1.8)\n' "$(echo "$C / $A" | bc -l)"
printf 'C/B = %.2f (target >= 1.0)\n' "$(echo "$C / $B" | bc -l)"
printf 'D 2 independent 1-thread runs on half batches, at once: %.0f tokens/s in all; D/A = %.2f (the bound on C/A without exchange)\n' "$D" "$(echo "$D / $A" | bc -l)"
echo "first 50 losses, C vs A: max relative difference $DIFF (target <= 1e-4)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

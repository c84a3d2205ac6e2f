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
# The four run in turn, R rounds (A B C D, A B C D, ...: a neighbour's load on this shared
# machine then falls on all four alike); it prints each round's rates and ratios, the median
# rates, and the issue's targets on the medians: C/A (>= 1.8), C/B (>= 1.0), and the largest
# relative difference of the first 50 step losses of C and A (<= 1e-4). Tokens/s = the target
# tokens of all steps (log.jsonl) / the wall time of the training loop ("N steps in T s"; data
# loading and process start are not counted).
#
# Usage: bash bench/mpi_scaling.sh [-s STEPS] [-b MAX_TOKENS] [-r ROUNDS]
#   -s optimizer steps per run (default 60, >= 50)  -b global batch token budget (default 2560,
#   w3's 64 sentences × 20 tokens per rank)  -r rounds (default 3)
# Needs target/release/recur built with `cargo build --release -p recur-cli --features mpi`
# and Open MPI's mpirun. MPIRUN_ARGS adds mpirun options (e.g. "--bind-to none" on a machine
# where other jobs hold a core). Never run by CI (about 100 s a round on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=60; BUDGET=2560; ROUNDS=3
while getopts "s:b:r:" o; do
  case $o in
    s) STEPS=$OPTARG ;; b) BUDGET=$OPTARG ;; r) ROUNDS=$OPTARG ;;
    *) sed -n 19,22p "$0"; exit 2 ;;
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
# shellcheck disable=SC2086
round() {
  local r=$1
  A=$(rate one-t1-$r "$RECUR" --threads 1)
  B=$(rate one-t2-$r "$RECUR" --threads 2)
  # RECUR_MPI_STATS=1: each rank prints its time in the allreduce (stderr).
  C=$(RECUR_MPI_STATS=1 rate two-t1-$r mpirun --allow-run-as-root --oversubscribe -x RECUR_MPI_STATS ${MPIRUN_ARGS:-} -np 2 "$RECUR" --threads 1)
  # D: what two ranks could reach here if the exchange and the work every rank repeats cost
  # nothing: two independent 1-thread runs at the same time, each on half the global batch (as
  # a rank's share), sharing the machine's caches and memory bandwidth as the two ranks do.
  local half="--set train.max_tokens=$((BUDGET / 2))"
  TRAIN_ARGS=$half rate half-a-$r "$RECUR" --threads 1 > "$WORK/d1" &
  TRAIN_ARGS=$half rate half-b-$r "$RECUR" --threads 1 > "$WORK/d2" &
  wait
  D=$(echo "$(cat "$WORK/d1") + $(cat "$WORK/d2")" | bc -l)
  printf 'round %d: A %.0f  B %.0f  C %.0f  D %.0f tokens/s;  C/A %.2f  C/B %.2f  D/A %.2f\n' "$r" "$A" "$B" "$C" "$D" \
    "$(echo "$C / $A" | bc -l)" "$(echo "$C / $B" | bc -l)" "$(echo "$D / $A" | bc -l)"
  echo "$A $B $C $D" >> "$WORK/rates"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for r in $(seq 1 "$ROUNDS"); do round "$r"; done
A=$(cut -d' ' -f1 "$WORK/rates" | median)
B=$(cut -d' ' -f2 "$WORK/rates" | median)
C=$(cut -d' ' -f3 "$WORK/rates" | median)
D=$(cut -d' ' -f4 "$WORK/rates" | median)
DIFF=$(for r in $(seq 1 "$ROUNDS"); do
  paste <(losses one-t1-$r) <(losses two-t1-$r)
done | awk '{d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.3g", m}')
echo "medians of $ROUNDS rounds:"
printf 'A 1 rank x 1 thread   %8.0f tokens/s\n' "$A"
printf 'B 1 rank x 2 threads  %8.0f tokens/s\n' "$B"
printf 'C 2 ranks x 1 thread  %8.0f tokens/s\n' "$C"
printf 'C/A = %.2f (target >= 1.8)\n' "$(echo "$C / $A" | bc -l)"
printf 'C/B = %.2f (target >= 1.0)\n' "$(echo "$C / $B" | bc -l)"
printf 'D 2 independent 1-thread runs on half batches, at once: %.0f tokens/s in all; D/A = %.2f (the bound on C/A without exchange)\n' "$D" "$(echo "$D / $A" | bc -l)"
echo "first 50 losses, C vs A (every round): max relative difference $DIFF (target <= 1e-4)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

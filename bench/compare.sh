#!/usr/bin/env bash
# Side-by-side recur vs PyTorch: runs `recur bench` and bench/pytorch_bench.py alternately
# R times at the same thread count, then prints per workload the median recur ms, median PyTorch
# ms and pytorch_ms / recur_ms (> 1: recur faster), via bench/ratios.py.
#
# Usage: bash bench/compare.sh [-t THREADS] [-r R] [-w w1-lstm,w3-train] [-q] [-g]
#   -t threads (default 1)   -r repetitions (default 3)   -w workloads (default: all)
#   -q quick mode (few repetitions inside each run)   -g also run bench/g2p_en_numpy.py (w4-g2p-b1)
# Needs .venv-bench (bash bench/setup_venv.sh) and target/release/recur (cargo build --release);
# when the recur binary is missing or has no `bench` command, only the other side is shown.
# recur side: `recur --threads N bench [--workloads a,b] [--quick]` (--threads is recur's global
# flag; bench uses pytorch_bench.py's warm-up/run schedule, --quick its quick one), same JSON line
# fields with "impl":"recur" and the workload names/semantics/FLOP formulas of bench/FLOPS.md.
# The raw JSON lines are kept in runs/compare-<date>-t<threads>.jsonl.  Never run by CI.
set -uo pipefail
cd "$(dirname "$0")/.."
THREADS=1; R=3; WORKLOADS=""; QUICK=""; G2P=0
while getopts "t:r:w:qg" o; do
  case $o in
    t) THREADS=$OPTARG ;; r) R=$OPTARG ;; w) WORKLOADS=$OPTARG ;; q) QUICK=--quick ;; g) G2P=1 ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
  esac
done
VPY=${VPY:-.venv-bench/bin/python}
RECUR=${RECUR:-target/release/recur}
[ -x "$VPY" ] || { echo "missing $VPY: run bash bench/setup_venv.sh" >&2; exit 1; }
mkdir -p runs
OUT="runs/compare-$(date +%Y%m%d-%H%M%S)-t$THREADS.jsonl"
: > "$OUT"

HAVE_RECUR=1
if [ ! -x "$RECUR" ]; then
  echo "recur binary $RECUR not found (cargo build --release): PyTorch side only" >&2; HAVE_RECUR=0
elif ! "$RECUR" bench --help >/dev/null 2>&1; then
  echo "$RECUR has no working 'bench' command yet: PyTorch side only" >&2; HAVE_RECUR=0
fi

WARGS=(); [ -n "$WORKLOADS" ] && WARGS=(--workloads "$WORKLOADS")
echo "threads=$THREADS R=$R ${QUICK:+quick }load=$(cut -d' ' -f1-3 /proc/loadavg) -> $OUT" >&2
for i in $(seq 1 "$R"); do
  if [ $HAVE_RECUR = 1 ]; then
    echo "[$i/$R] recur" >&2
    "$RECUR" --threads "$THREADS" bench "${WARGS[@]}" $QUICK | tee -a "$OUT" >/dev/null \
      || echo "recur bench failed (run $i)" >&2
  fi
  echo "[$i/$R] pytorch" >&2
  "$VPY" bench/pytorch_bench.py --threads "$THREADS" "${WARGS[@]}" $QUICK | tee -a "$OUT" >/dev/null
  if [ $G2P = 1 ]; then
    echo "[$i/$R] g2p_en numpy" >&2
    "$VPY" bench/g2p_en_numpy.py --threads "$THREADS" $QUICK | tee -a "$OUT" >/dev/null
  fi
done
"$VPY" bench/ratios.py "$OUT"

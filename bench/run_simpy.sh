#!/usr/bin/env bash
# Engine throughput of sysim (nexosim + hand-written heap loop) against SimPy 4.1 on the same PHOLD.
#
# Usage: bench/run_simpy.sh [LPS] [EVENTS] [SEED]        (defaults: 1000 1000000 1)
#   PYTHON=python3.11 bench/run_simpy.sh                   (interpreter used to create the venv)
#
# Creates bench/.venv (git-ignored) with simpy==4.1.*, runs the release binary's
# `sysim bench --lps --events --seed`, then bench/phold_simpy.py with the same parameters in its
# idiomatic `store` shape (processes + one store per LP, the counterpart of sysim's LP + router
# models) and its `callback` shape (bare timeouts, SimPy's event-loop floor). The other PHOLD
# parameters are the defaults shared by both sides: 1 initial event per LP, hop delay
# 0.1 s + Exp(mean 1 s). Prints the events/s of each and the sysim/SimPy ratios.
set -euo pipefail

LPS="${1:-1000}"
EVENTS="${2:-1000000}"
SEED="${3:-1}"
PYTHON="${PYTHON:-python3}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating $venv" >&2
  "$PYTHON" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import simpy, sys; sys.exit(not simpy.__version__.startswith("4.1."))' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet 'simpy==4.1.*'
fi

# Extracts the value of KEY=VALUE from the text on stdin.
field() { grep -o "\b$1=[^ ]*" | head -n1 | cut -d= -f2; }

echo "== sysim (release) =="
sysim_out="$(cd "$root" && cargo run --release -q -- bench --lps "$LPS" --events "$EVENTS" --seed "$SEED")"
echo "$sysim_out"
nexosim_rate="$(field nexosim_events_per_s <<<"$sysim_out")"
heap_rate="$(field heap_events_per_s <<<"$sysim_out")"
if [[ -z "$nexosim_rate" || -z "$heap_rate" ]]; then
  echo "error: no nexosim_events_per_s / heap_events_per_s in the output of 'sysim bench'" >&2
  exit 1
fi

echo "== SimPy $("$venv/bin/python" -c 'import simpy; print(simpy.__version__)') =="
store_out="$("$venv/bin/python" "$here/phold_simpy.py" --lps "$LPS" --events "$EVENTS" --seed "$SEED" --pattern store)"
echo "$store_out"
callback_out="$("$venv/bin/python" "$here/phold_simpy.py" --lps "$LPS" --events "$EVENTS" --seed "$SEED" --pattern callback)"
echo "$callback_out"
store_rate="$(field simpy_events_per_s <<<"$store_out")"
callback_rate="$(field simpy_events_per_s <<<"$callback_out")"

echo "== ratios (events/s) =="
awk -v n="$nexosim_rate" -v h="$heap_rate" -v s="$store_rate" -v c="$callback_rate" 'BEGIN {
  printf "ratio_nexosim_over_simpy_store=%.2f\n", n / s
  printf "ratio_nexosim_over_simpy_callback=%.2f\n", n / c
  printf "ratio_heap_over_simpy_callback=%.2f\n", h / c
}'

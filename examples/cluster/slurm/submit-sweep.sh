#!/usr/bin/env bash
# Submits the sweep as a Slurm job array, one task per unit, and a collect job that waits for all of them.
# Usage: ./submit-sweep.sh            (settings in config.sh, or IRR_CONFIG=FILE, or the environment)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=config.sh
source "${IRR_CONFIG:-$here/config.sh}"
# The number of units, from the options alone (this checks them too: a bad option fails here, not in every task).
# shellcheck disable=SC2086
units=$(irr sweep $SWEEP_ARGS --output "$SWEEP_DIR" --list-points \
  ${ENGINE_SERVE:+--engine-serve "$ENGINE_SERVE"} ${ENGINE_SERVE_ADAPTER:+--engine-serve-adapter "$ENGINE_SERVE_ADAPTER"} | sed -n 's/^units: //p')
[ -n "$units" ] || { echo "submit-sweep.sh: irr sweep --list-points gave no unit count" >&2; exit 1; }
# With a serving engine, every task (and the collect job, which computes what a task left undone) gets a GPU.
# (${gpu[@]+…}: an empty array under set -u is an error in bash before 4.4, e.g. RHEL/CentOS 7.)
gpu=()
[ -n "$ENGINE_SERVE$ENGINE_SERVE_ADAPTER" ] && gpu=(--gres="$GRES")
array=$(sbatch --parsable --array="0-$((units - 1))" ${gpu[@]+"${gpu[@]}"} --cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" "$here/sweep.sbatch")
array=${array%%;*}
collect=$(sbatch --parsable --dependency="afterok:$array" ${gpu[@]+"${gpu[@]}"} --cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" "$here/sweep-collect.sbatch")
echo "sweep: job array $array ($units units), collect job ${collect%%;*} -> $SWEEP_DIR"

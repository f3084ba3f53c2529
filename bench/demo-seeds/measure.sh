#!/usr/bin/env bash
# The demo's per-seed tables of docs/DEMO.md and docs/BASELINES.md: runs `irr demo` at each seed (one after the other:
# the demo uses both cores) and prints the tables (table.py) from the runs' demo.json files.
#
# Usage: bench/demo-seeds/measure.sh [default|quick] [SEED …]     (defaults: default mode, seeds 1 2 3 4 5 11 12 13)
#   IRR_DLL: the irr CLI to run (default src/Irr.Cli/bin/Release/net10.0/Irr.Cli.dll, built with
#            `dotnet build -c Release src/Irr.Cli`); OUT: where the demo runs go (default /tmp/irr-demo-seeds).
# A seed whose demo.json exists is not run again. Needs python3 (the standard library only) for the tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-default}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4 5 11 12 13)
dll=${IRR_DLL:-src/Irr.Cli/bin/Release/net10.0/Irr.Cli.dll}
out=${OUT:-/tmp/irr-demo-seeds}
quick=()
[ "$mode" = quick ] && quick=(--quick)
mkdir -p "$out/logs"
for seed in "${seeds[@]}"; do
  dir=$out/$mode-seed$seed
  [ -f "$dir/demo.json" ] && continue
  echo "irr demo ${quick[*]} --seed $seed -o $dir" >&2
  start=$(date +%s)
  dotnet "$dll" demo "${quick[@]}" --seed "$seed" -o "$dir" --overwrite > "$out/logs/$mode-seed$seed.log" 2>&1 \
    || { echo "failed: see $out/logs/$mode-seed$seed.log" >&2; exit 1; }
  echo "  $(( $(date +%s) - start )) s" >&2
done
python3 bench/demo-seeds/table.py "$out" "$mode" "${seeds[@]}"

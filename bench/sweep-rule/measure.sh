#!/usr/bin/env bash
# Does irr sweep's --rule conservative choose better than the default rule on seeds the demo was never tuned on?
# (docs/SWEEP.md, "Which rule: a measurement".) For every seed, `irr demo` runs twice, once per rule: everything before the
# sweeps (data, training, safety vector, Fisher) and the sweeps' evaluations are the same bits in both runs (the demo is
# deterministic), so the two runs differ only in the s each rule chooses on the validation split and in what follows from
# it. table.py then compares the chosen points on the held-out split.
#
# Usage: bench/sweep-rule/measure.sh [default|quick] [SEED …]     (defaults: default mode, seeds 21 to 26)
#   IRR_DLL: the irr CLI to run (default src/Irr.Cli/bin/Release/net10.0/Irr.Cli.dll, built with
#            `dotnet build -c Release src/Irr.Cli`); OUT: where the demo runs go (default /tmp/irr-sweep-rule).
# A seed and rule whose demo.json exists is not run again. Needs python3 (the standard library only) for the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-default}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(21 22 23 24 25 26)
dll=${IRR_DLL:-src/Irr.Cli/bin/Release/net10.0/Irr.Cli.dll}
out=${OUT:-/tmp/irr-sweep-rule}
quick=()
mkdir -p "$out/logs"
[ "$mode" = quick ] && quick=(--quick)
for seed in "${seeds[@]}"; do
  for rule in default conservative; do
    dir=$out/$mode-seed$seed-$rule
    [ -f "$dir/demo.json" ] && continue
    echo "irr demo ${quick[*]} --seed $seed --sweep-rule $rule -o $dir" >&2
    dotnet "$dll" demo "${quick[@]}" --seed "$seed" --sweep-rule "$rule" -o "$dir" --overwrite > "$out/logs/$mode-seed$seed-$rule.log" 2>&1 \
      || { echo "failed: see $out/logs/$mode-seed$seed-$rule.log" >&2; exit 1; }
  done
done
python3 bench/sweep-rule/table.py "$out" "$mode" "${seeds[@]}"

#!/usr/bin/env bash
# Side-by-side GEMM and Cholesky-chain figures for docs/PERFORMANCE.md: Irr.Bench against OpenBLAS
# through numpy, in one sitting. Each side runs ROUNDS times, alternating, and the best figure of
# each side is kept (the machine is a shared VM whose speed drifts by ±10% from minute to minute).
#
# Needs Debian's python3-numpy with OpenBLAS behind it:
#   apt-get install -y python3-numpy libopenblas0-pthread
# Usage: bench/compare.sh [ROUNDS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
py=/usr/bin/python3
if ! $py -c 'import numpy' 2>/dev/null; then
  echo "error: $py has no numpy; apt-get install -y python3-numpy libopenblas0-pthread" >&2
  exit 1
fi
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in *openblas*) ;; *) echo "warning: numpy's BLAS is $blas, not OpenBLAS" >&2 ;; esac

dotnet build bench/Irr.Bench -c Release -v quiet -nologo >/dev/null
bench="dotnet bench/Irr.Bench/bin/Release/net10.0/Irr.Bench.dll"

best() { sort -g | tail -1; }      # largest of a column of numbers
least() { sort -g | head -1; }     # smallest

declare -A ours theirs
for n in 1024 2048 4096; do
  for ((r = 0; r < rounds; r++)); do
    ours[g$n]+="$($bench gemm --size $n | tail -1 | sed -E 's/.*gflops=//') "
    theirs[g$n]+="$($py bench/numpy/reference.py gemm $n | tail -1 | sed -E 's/.*gflops=//') "
  done
done
for ((r = 0; r < rounds; r++)); do
  ours[c4096]+="$($bench cholesky --size 4096 | tail -1 | sed -E 's/.*seconds=//') "
  theirs[c4096]+="$($py bench/numpy/reference.py cholesky 4096 | grep '^numpy-cholesky ' | sed -E 's/.*seconds=//') "
done

echo "| benchmark | IRR.NET | OpenBLAS (numpy) | ratio |"
echo "|---|---:|---:|---:|"
for n in 1024 2048 4096; do
  o=$(tr ' ' '\n' <<<"${ours[g$n]}" | grep . | best)
  t=$(tr ' ' '\n' <<<"${theirs[g$n]}" | grep . | best)
  echo "| GEMM n=$n (GFLOP/s, higher is better) | $o | $t | $(awk -v a="$o" -v b="$t" 'BEGIN{printf "%.0f%%", 100*a/b}') |"
done
o=$(tr ' ' '\n' <<<"${ours[c4096]}" | grep . | least)
t=$(tr ' ' '\n' <<<"${theirs[c4096]}" | grep . | least)
echo "| Cholesky chain n=4096 (s, lower is better) | $o | $t | $(awk -v a="$o" -v b="$t" 'BEGIN{printf "%.2f×", a/b}') |"
echo
echo "all rounds: $(for k in "${!ours[@]}"; do echo "ours[$k]=${ours[$k]}"; done | sort | tr '\n' ';') $(for k in "${!theirs[@]}"; do echo "numpy[$k]=${theirs[$k]}"; done | sort | tr '\n' ';')"

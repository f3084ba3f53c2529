#!/usr/bin/env bash
# Submits eval-vllm.sbatch: $EVAL_MODEL served by vLLM on one GPU and evaluated (safety under $ATTACKS, and the task).
# Usage: ./submit-eval.sh [sbatch options, e.g. --dependency=afterok:JOBID to run after the sweep's collect job]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=config.sh
source "${IRR_CONFIG:-$here/config.sh}"
job=$(sbatch --parsable --gres="$GRES" --cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" "$@" "$here/eval-vllm.sbatch")
echo "eval: job ${job%%;*} ($EVAL_MODEL) -> $EVAL_DIR"

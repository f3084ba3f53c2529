#!/usr/bin/env bash
# Submits the Fisher as a Slurm job array of $SHARDS tasks and a merge job that waits for all of them.
# Usage: ./submit-fisher.sh            (settings in config.sh, or IRR_CONFIG=FILE, or the environment)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=config.sh
source "${IRR_CONFIG:-$here/config.sh}"
# The inputs every task reads, checked before anything is submitted.
[ -d "$MODEL" ] || { echo "submit-fisher.sh: MODEL $MODEL: no such directory" >&2; exit 2; }
[ -f "$SAFETY_DATA" ] || { echo "submit-fisher.sh: SAFETY_DATA $SAFETY_DATA: no such file" >&2; exit 2; }
array=$(sbatch --parsable --array="0-$((SHARDS - 1))" --cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" "$here/fisher.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterok:$array" --cpus-per-task=2 --mem="$MERGE_MEM" --time=00:30:00 "$here/fisher-merge.sbatch")
echo "Fisher: job array $array ($SHARDS shards), merge job ${merge%%;*} -> $WORK/fisher.safetensors"

#!/usr/bin/env bash
# Slurm benchmark: a 4-trial sweep locally (one after another) and on Slurm (a job array, --slurm-cpus CPUS per task),
# then the scheduling overhead of a job (submit to start, from squeue) for jobs with nothing to wait for.
# Needs a running Slurm (SLURM_CONF set; see README "On a Slurm cluster") and a built fer:
#   dotnet build Fer.sln -c Release && SLURM_CONF=/tmp/slurm/slurm.conf bash tests/Fer.Bench/slurm-bench.sh [CPUS]
set -euo pipefail
cd "$(dirname "$0")/../.."
cpus=${1:-2}
fer=Fer.Flow/bin/Release/net10.0/fer
work=$(mktemp -d /tmp/fer-slurm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/bench.fsx" <<EOF
#load "$PWD/flows/Fer.fsx"
open Fer
flow "bench" [
    ingest  [ "count" => 1400; "seed" => 1 ]
    augment [ "flip" => true ]
    split   [ "valid_fraction" => 0.1; "seed" => 1 ]
    train [ model "cnn" "seed-cnn" [ "lr" => 1e-3 ] ] [ "epochs" => 1; "seed" => 1 ]
    predict [ "tta" => "flip" ]
]
EOF
sweep=(--sweep train.cnn.lr=1e-3,5e-4 --sweep train.cnn.seed=1,2)
# Warm the shared stages (ingest, augment, split) in both folders, so both compare the 4 trainings alone.
"$fer" run "$work/bench.fsx" --device cpu --artifacts "$work/local" --set train.cnn.epochs=1 --set train.cnn.lr=0.1 > /dev/null
cp -r "$work/local" "$work/slurm"
start=$(date +%s.%N)
"$fer" run "$work/bench.fsx" --device cpu --artifacts "$work/local" "${sweep[@]}" > /dev/null
local_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
FER_SLURM_POLL_SECONDS=0.5 "$fer" run "$work/bench.fsx" --device cpu --artifacts "$work/slurm" --executor slurm --slurm-cpus "$cpus" "${sweep[@]}" > /dev/null
slurm_s=$(echo "$(date +%s.%N) - $start" | bc)
printf 'sweep of 4 trials (seed CNN, 1 epoch on 2,268 faces each): local one after another %.1f s; Slurm array, %s CPUs per task: %.1f s\n' "$local_s" "$cpus" "$slurm_s"

# Scheduling overhead: 10 jobs of `true`, one at a time; submit to start as squeue reports it (1 s resolution).
ids=()
for i in $(seq 1 10); do
  id=$(sbatch --parsable --wrap true -o /dev/null); ids+=("$id")
  while squeue -h -j "$id" -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i | grep -q .; do sleep 0.2; done
done
squeue --states=all -h -j "$(IFS=,; echo "${ids[*]}")" -o '%V %S' | python3 -c '
import sys, datetime
d = [(datetime.datetime.fromisoformat(b) - datetime.datetime.fromisoformat(a)).total_seconds() for a, b in (l.split() for l in sys.stdin if l.strip())]
print(f"submit to start over {len(d)} jobs: mean {sum(d)/len(d):.2f} s, max {max(d):.0f} s (squeue timestamps, 1 s resolution)")'

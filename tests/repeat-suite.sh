#!/usr/bin/env bash
# Runs the README's test command several times in a row (default 5); the last run shuffles the order of test
# collections and of the tests within each (FER_TEST_SHUFFLE_SEED, a random seed unless given). A test that fails in
# any run is not deterministic and must be fixed. Each run's whole output is kept; the summary names the failures.
#   bash tests/repeat-suite.sh [RUNS]          FER_TEST_SHUFFLE_SEED=1234 bash tests/repeat-suite.sh 1
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
case "$runs" in ''|*[!0-9]*|0) echo "give the number of runs (1 or more), not '$runs'" >&2; exit 2 ;; esac
seed=${FER_TEST_SHUFFLE_SEED:-$((RANDOM * 32768 + RANDOM))}
logs=$(mktemp -d "${TMPDIR:-/tmp}/fer-repeat-XXXXXX")
failed_runs=0
for i in $(seq 1 "$runs"); do
  if [ "$i" -eq "$runs" ]; then order="shuffled, seed $seed"; export FER_TEST_SHUFFLE_SEED=$seed
  else order="xunit's order"; unset FER_TEST_SHUFFLE_SEED; fi
  start=$(date +%s)
  dotnet test Fer.sln -c Release > "$logs/run-$i.log" 2>&1
  code=$?
  echo "run $i of $runs ($order): exit $code in $(( $(date +%s) - start )) s"
  grep -E '^(Passed|Failed)!' "$logs/run-$i.log" | sed 's/^/  /'
  grep -E '^\s+Failed [A-Za-z]' "$logs/run-$i.log" | sed 's/^ */  failed: /'
  [ "$code" -eq 0 ] || failed_runs=$((failed_runs + 1))
done
echo "$failed_runs of $runs runs failed; logs in $logs"
[ "$failed_runs" -eq 0 ]

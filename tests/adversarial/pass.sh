#!/usr/bin/env bash
# An adversarial pass over Fer's command line (issue 29's five rules): each case runs the built `fer`, and one line
# per case says what it gave: exit code, the first line of stderr, and a check where the case has one.
#
#   dotnet build Fer.sln -c Release && bash tests/adversarial/pass.sh [WORKDIR]
#
# Needs: a built fer (Fer.Flow/bin/Release), /usr/bin/flock, python3; root for the tmpfs (full-disk) cases
# (skipped otherwise). It trains one tiny run first (about 30 s on 2 cores). Not part of the test suite: the suite's
# tests cover instances of each rule; this is the wider pass, to be read.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
FER=(dotnet "$REPO/Fer.Flow/bin/Release/net10.0/fer.dll")
W="${1:-$(mktemp -d /tmp/fer-adversarial.XXXXXX)}"
mkdir -p "$W" && cd "$W" || exit 1
A="$W/artifacts"
n=0

# case RULE "DESCRIPTION" EXPECTED_EXIT CMD...: runs CMD, prints one line.
case_() {
  local rule="$1" what="$2" want="$3"; shift 3
  n=$((n + 1))
  local out err code
  err="$("$@" 2>&1 >/dev/null < /dev/null)"; code=$?
  local first; first="$(printf '%s' "$err" | grep -v '^\s*$' | head -1 | cut -c1-150)"
  local lines; lines="$(printf '%s' "$err" | grep -c -v '^\s*$')"
  local verdict=ok
  [[ "$code" != "$want" ]] && verdict="UNEXPECTED (wanted $want)"
  printf '%2d | %s | %s | exit %s | %s lines | %s | %s\n' "$n" "$rule" "$what" "$code" "$lines" "$verdict" "$first"
}
# check RULE "DESCRIPTION" CONDITION-COMMAND: a check without a fer exit code of its own.
check_() {
  local rule="$1" what="$2"; shift 2
  n=$((n + 1))
  if "$@" >/dev/null 2>&1; then printf '%2d | %s | %s | check | ok\n' "$n" "$rule" "$what"
  else printf '%2d | %s | %s | check | FAILED\n' "$n" "$rule" "$what"; fi
}

cat > tiny.fsx <<EOF
#load @"$REPO/flows/Fer.fsx"
open Fer
let count = param "count" 140
let epochs = param "epochs" 1
flow "tiny" [
    ingest [ "count" => count; "seed" => 1; "test_fraction" => 0.15 ]
    augment [ "flip" => true ]
    split [ "valid_fraction" => 0.2; "seed" => 1 ]
    train [ model "cnn" "seed-cnn" [ "epochs" => epochs; "batch_size" => 64 ]
            model "dnn" "seed-dnn" [ "epochs" => epochs; "batch_size" => 64 ] ] []
    predict [ "tta" => "flip" ]
    visualize [ "members" => "cnn"; "methods" => "saliency"; "ascent_steps" => 4; "max_filters" => 4 ]
    report []
]
EOF
echo "training the tiny run in $A ..."
"${FER[@]}" run tiny.fsx --artifacts "$A" --device cpu > train.log 2>&1 || { echo "the tiny run failed: see $W/train.log"; exit 1; }
RUN="$(ls "$A/runs" | head -1)"
python3 - <<'EOF'
import struct, zlib
def png(path, w, h, value=128):
    raw = b"".join(b"\x00" + bytes([value]) * w for _ in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png("face.png", 48, 48)
png("=2+5.png", 48, 48)
png("@SUM(A1).png", 48, 48)
png("esc\x1b]0;pwned\x07.png", 48, 48)
# a PNG header claiming 40000x40000 over a few bytes of data
d = open("face.png", "rb").read()
open("huge-claim.png", "wb").write(d[:16] + struct.pack(">II", 40000, 40000) + d[24:])
open("truncated.png", "wb").write(d[:40])
open("not-an-image.png", "w").write("hello")
EOF
mkdir -p "new
line"; cp face.png "new
line/x.png"
mkfifo fifo.csv fifo.fsx
printf 'emotion,pixels,Usage\n0,%s,Training\n' "$(python3 -c 'print(" ".join(["1"]*2304))')" > ok.csv

echo "case | rule | what | result | stderr lines | verdict | first line"
# Rule 1: every input validated, one line, exit 2.
case_ 1 "run: unknown parameter" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set nope=1
case_ 1 "run: epochs -1" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set epochs=-1
case_ 1 "run: epochs 1e99" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set epochs=1e99
case_ 1 "run: lr NaN" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set train.cnn.lr=NaN
case_ 1 "run: valid_fraction 1.5" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set split.valid_fraction=1.5
case_ 1 "run: tta unknown" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set predict.tta=twelve_crop
case_ 1 "run: gradcam layer without maps" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set visualize.gradcam_layer=dense_1 --set visualize.methods=gradcam
case_ 1 "run: crop hyperparameter on seed-cnn" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set train.cnn.crop=40
case_ 1 "run: script missing" 2 "${FER[@]}" run missing.fsx --artifacts "$A"
case_ 1 "run: script is a FIFO" 2 "${FER[@]}" run fifo.fsx --artifacts "$A"
case_ 1 "run: script is /dev/zero" 2 "${FER[@]}" run /dev/zero --artifacts "$A"
case_ 1 "run: script is a folder" 2 "${FER[@]}" run "$REPO/flows" --artifacts "$A"
case_ 1 "run: train CSV is a FIFO" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set ingest.train="$W/fifo.csv"
case_ 1 "run: device tpu" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --device tpu
case_ 1 "run: --from unknown stage" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --from nowhere
case_ 1 "run: sweep without values" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --sweep epochs=
case_ 1 "run: sweep of a value that does not parse" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --sweep epochs=1,two
case_ 1 "run: artifacts is a file" 2 "${FER[@]}" run tiny.fsx --artifacts "$W/tiny.fsx"
case_ 1 "run: FER_SCRIPT_CACHE is a file" 2 env FER_SCRIPT_CACHE="$W/face.png" "${FER[@]}" run tiny.fsx --artifacts "$A"
case_ 1 "run: FER_SLURM_POLL_SECONDS=abc on slurm" 2 env FER_SLURM_POLL_SECONDS=abc "${FER[@]}" run tiny.fsx --artifacts "$A" --executor slurm
case_ 1 "predict: no paths" 2 "${FER[@]}" predict --artifacts "$A"
case_ 1 "predict: --every 0" 2 "${FER[@]}" predict face.png --artifacts "$A" --every 0
case_ 1 "predict: --margin NaN" 2 "${FER[@]}" predict face.png --artifacts "$A" --margin NaN
case_ 1 "predict: --detector magic" 2 "${FER[@]}" predict face.png --artifacts "$A" --detector magic
case_ 1 "predict: --yunet-model /dev/zero" 2 "${FER[@]}" predict face.png --artifacts "$A" --detector yunet --yunet-model /dev/zero
case_ 1 "predict: --yunet-model a text file" 2 "${FER[@]}" predict face.png --artifacts "$A" --yunet-model "$W/tiny.fsx"
case_ 1 "predict: --cascade /etc/passwd" 2 "${FER[@]}" predict face.png --artifacts "$A" --cascade /etc/passwd
case_ 1 "predict: --run unknown" 2 "${FER[@]}" predict face.png --artifacts "$A" --run nosuchrun
case_ 1 "predict: not an image" 2 "${FER[@]}" predict not-an-image.png --artifacts "$A" --no-detect --out "$W/p1"
case_ 1 "predict: truncated PNG" 2 "${FER[@]}" predict truncated.png --artifacts "$A" --no-detect --out "$W/p2"
case_ 1 "export: --run unknown" 2 "${FER[@]}" export --artifacts "$A" --run nosuchrun --out "$W/e0"
case_ 1 "export: --out is a file" 2 "${FER[@]}" export --artifacts "$A" --out "$W/face.png"
case_ 1 "logs: unknown run" 2 "${FER[@]}" logs nosuchrun --artifacts "$A"
case_ 1 "logs: --where that does not parse" 2 "${FER[@]}" logs "$RUN" --artifacts "$A" --where "status =="
case_ 1 "logs: --where beginning with @ (no response file)" 0 "${FER[@]}" logs "$RUN" --artifacts "$A" --where "@l = 'Information'"
case_ 1 "synth: --count -5" 2 "${FER[@]}" synth --out "$W/s1" --count -5
case_ 1 "synth: --count 10000000000" 2 "${FER[@]}" synth --out "$W/s2" --count 10000000000
case_ 1 "new: a flow name with a control character" 2 "${FER[@]}" new "$(printf 'bad\033name.fsx')"
case_ 1 "gc: --keep-last -1" 2 "${FER[@]}" gc --artifacts "$A" --keep-last -1
case_ 1 "compare: one unknown run" 2 "${FER[@]}" compare "$RUN" nosuchrun --artifacts "$A" --out "$W/c0.html"
# Rule 2: injection.
case_ 2 "predict: photo named =2+5.png" 0 "${FER[@]}" predict "=2+5.png" "@SUM(A1).png" --artifacts "$A" --no-detect --out "$W/p3"
check_ 2 "faces.csv neutralises = and @ cells" grep -q "^'=2+5.png" "$W/p3/faces.csv"
case_ 2 "predict: ESC sequence in a file name" 0 "${FER[@]}" predict "$(printf 'esc\033]0;pwned\007.png')" --artifacts "$A" --no-detect --out "$W/p4"
check_ 2 "faces.json writes the ESC as \\u001b (faces.csv keeps the file's true name, RFC 4180-quoted)" grep -q 'u001B\|u001b' "$W/p4/faces.json"
case_ 2 "predict: newline in a folder name, error one line" 2 "${FER[@]}" predict "$(printf 'new\nline')/missing.png" --artifacts "$A" --no-detect --out "$W/p5"
python3 - "$A/runs/$RUN/run.json" <<'EOF'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["flow"] = "evil\x1b[2J\x1b]0;title\x07|x\n**bold**"; json.dump(d, open(p, "w"))
EOF
case_ 2 "runs: ESC and newline in run.json's flow" 0 "${FER[@]}" runs --artifacts "$A"
check_ 2 "runs output has no raw ESC" bash -c "! '${FER[0]}' '${FER[1]}' runs --artifacts '$A' | grep -q \$'\\x1b'"
"${FER[@]}" run tiny.fsx --artifacts "$A" --set epochs=2 > /dev/null 2>&1
case_ 2 "runs diff --md against a run whose flow holds ESC, | and a newline" 0 "${FER[@]}" runs diff "$RUN" latest --artifacts "$A" --md
check_ 2 "the Markdown has no raw ESC and one line per row" bash -c "'${FER[0]}' '${FER[1]}' runs diff '$RUN' latest --artifacts '$A' --md --all | grep -v -q \$'\\x1b' && ! '${FER[0]}' '${FER[1]}' runs diff '$RUN' latest --artifacts '$A' --md --all | grep -q '^\*\*bold'"
# Rule 3: bounded work.
case_ 3 "run: a 1001-trial sweep" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --sweep seed=$(seq -s, 1 11) --sweep epochs=$(seq -s, 1 91)
case_ 3 "run: count 900001" 2 "${FER[@]}" run tiny.fsx --artifacts "$A" --set count=900001
case_ 3 "logs: --where of 5,000 characters" 2 "${FER[@]}" logs "$RUN" --artifacts "$A" --where "$(python3 -c 'print("(" * 2500 + ")" * 2500)')"
case_ 3 "compare: the same run 500 times" 2 "${FER[@]}" compare $(for i in $(seq 500); do printf '%s ' "$RUN"; done) --artifacts "$A" --out "$W/c1.html"
case_ 3 "predict: PNG header claiming 40000x40000" 2 "${FER[@]}" predict huge-claim.png --artifacts "$A" --no-detect --out "$W/p6"
cp -r "$A" "$W/sparse" && truncate -s 3G "$W/sparse/runs/$RUN/log.clef"
case_ 3 "logs: a sparse 3 GB log.clef" 2 "${FER[@]}" logs "$RUN" --artifacts "$W/sparse"
python3 -c "import sys; open(sys.argv[1],'w').write('{\"@t\":\"2026-01-01T00:00:00Z\",\"@mt\":\"' + 'x'*(200*1024*1024) + '\"}\n')" "$W/big.clef"
cp "$W/big.clef" "$W/sparse/runs/$RUN/log.clef"
case_ 3 "logs: one 200 MB event (skipped and counted, by design)" 0 "${FER[@]}" logs "$RUN" --artifacts "$W/sparse"
truncate -s 3G "$W/sparse/runs/$RUN/run.json"
case_ 3 "runs: a sparse 3 GB run.json" 0 "${FER[@]}" runs --artifacts "$W/sparse"
# Rule 4: nothing half-written.
mkdir -p many; for i in $(seq 400); do cp face.png "many/$i.png"; done
( "${FER[@]}" predict many --artifacts "$A" --no-detect --out "$W/p7" > /dev/null 2>&1 & echo $! > pid; wait ) & sleep 6; kill -9 "$(cat pid)" 2>/dev/null; wait
check_ 4 "kill -9 during predict: faces.csv absent or whole" bash -c "[ ! -e '$W/p7/faces.csv' ] || [ \$(wc -l < '$W/p7/faces.csv') -ge 1 ]"
if [[ "$(id -u)" == 0 ]]; then
  mkdir -p full && mount -t tmpfs -o size=300k tmpfs full
  case_ 4 "export into a full file system" 2 "${FER[@]}" export --artifacts "$A" --out "$W/full/export"
  check_ 4 "no partial export left" bash -c "[ -z \"\$(ls -A '$W/full')\" ]"
  dd if=/dev/zero of=full/filler bs=1k 2>/dev/null  # until the file system is full
  case_ 4 "predict into a full file system" 2 "${FER[@]}" predict face.png --artifacts "$A" --no-detect --out "$W/full/p"
  check_ 4 "no partial faces.csv" bash -c "[ ! -e '$W/full/p/faces.csv' ] || [ \$(wc -l < '$W/full/p/faces.csv') -ge 2 ]"
  umount full
fi
# Rule 5: concurrency.
"${FER[@]}" export --artifacts "$A" --out "$W/e1" > e1.out 2>&1 & p1=$!
"${FER[@]}" export --artifacts "$A" --out "$W/e1" > e2.out 2>&1 & p2=$!
wait $p1; c1=$?; wait $p2; c2=$?
n=$((n + 1)); printf '%2d | 5 | two exports into one --out at once | exits %s and %s | %s\n' "$n" "$c1" "$c2" "$(cat e1.out e2.out | grep -m1 error | cut -c1-150)"
check_ 5 "the export folder is whole (SHA256SUMS verify)" bash -c "cd '$W/e1' && sha256sum -c --quiet SHA256SUMS"
"${FER[@]}" predict many --artifacts "$A" --no-detect --out "$W/p8" > q1.out 2>&1 & p1=$!
sleep 1; "${FER[@]}" predict face.png --artifacts "$A" --no-detect --out "$W/p8" > q2.out 2>&1; c2=$?
wait $p1; c1=$?
n=$((n + 1)); printf '%2d | 5 | two predicts into one --out at once | exits %s and %s | %s\n' "$n" "$c1" "$c2" "$(grep -m1 error q2.out | cut -c1-150)"
"${FER[@]}" run tiny.fsx --artifacts "$A" --set epochs=3 > r1.out 2>&1 & p1=$!
sleep 4  # the run holds the folder (its members train: epochs=3 is not cached)
case_ 5 "gc while a run holds the folder" 3 "${FER[@]}" gc --artifacts "$A" --keep-last 1
case_ 5 "compare while a run writes" 0 "${FER[@]}" compare "$RUN" latest --artifacts "$A" --out "$W/c2.html"
case_ 5 "predict while a run writes" 0 "${FER[@]}" predict face.png --artifacts "$A" --run "$RUN" --no-detect --out "$W/p9"
wait $p1
n=$((n + 1)); printf '%2d | 5 | the run beside them | exit %s\n' "$n" "$?"
case_ 5 "gc afterwards keeps the last run's entries" 0 "${FER[@]}" gc --artifacts "$A" --keep-last 1
case_ 5 "the last run still runs from cache" 0 "${FER[@]}" run tiny.fsx --artifacts "$A" --set epochs=3
echo "workdir: $W"

#!/usr/bin/env bash
# Several training runs at once on a remote GPU machine, within a fixed time budget.
#   scripts/device_train.sh BUDGET_S [NAME ...]     (from the repo root; default: every run in RUNS)
# Needs in the working tree: .devdata/ (scripts/pack_training_data.py .devdata) and .whl/ (soundfile,
# cffi, pycparser and soxr wheels for the remote's Python), and $OUT, the folder whose files come back.
# The remote has torch/numpy/tqdm/matplotlib/safetensors but not soundfile/soxr: the wheels go to
# /tmp/site. Each run trains with the shipped recipe (scripts/train_shipped_model.sh) plus its own
# arguments, the network on the GPU, batches made on 2 CPU threads. At BUDGET_S seconds after the start
# (less a reserve for packing) the runs still going are killed: a killed run keeps the best model it
# had written so far (train() writes each validation improvement), and its log keeps the per-epoch rows. Results: $OUT/summary.txt and either
# the files themselves ($OUT/<name>/{model.safetensors,config.json,report.json}, $OUT/logs/) or, when
# that would be more than 8 files, all of it in $OUT/runs.tar.gz.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

budget=${1:?usage: scripts/device_train.sh BUDGET_SECONDS [NAME ...]}
shift
start=$(date +%s)
reserve=25                               # seconds kept for killing stragglers and packing
deadline=$((start + budget - reserve))
: "${OUT:?OUT must name the folder whose files come back}"

# NAME  extra arguments (given after COMMON, so they win: argparse keeps the last value)
RUNS=(
  "r3s1    --seed 1"
  "r3s2    --seed 2"
  "r5s1    --hidden-size 192 --conv-channels 96 --seed 1"
  "r5s2    --hidden-size 192 --conv-channels 96 --seed 2"
  "h160    --hidden-size 160 --conv-channels 80"
  "l3      --layers 3"
  "d2      --dropout 0.2 --hidden-size 192 --conv-channels 96"
)
# The shipped recipe (conv 64, GRU 2 x 128 by default). No --quiet: with it train() prints nothing
# until the end, so a run killed at the deadline would leave no trace. The progress bars (stderr) are
# dropped from the logs below; the per-epoch rows (stdout) stay.
COMMON="--data .devdata/speech_commands --epochs 80 --batch-size 128 --lr 5e-3
        --extra-unknown .devdata/extra_unknown --extra-unknown-share 0.25 --threads ${THREADS:-2} --device ${DEVICE:-cuda}
        ${TRY_ARGS:-}"   # TRY_ARGS: e.g. "--max-clips 60 --epochs 2" for a quick try of this script
PY=${PY:-python3}      # the remote's Python (another for a local try: PY=.venv/bin/python DEVICE=cpu)
SITE=${SITE:-/tmp/site}  # where the wheels go; SITE=none: install nothing (a local try with the venv's)

logs="$OUT/logs"
errs=/tmp/device_train_err
rm -rf "$errs"
mkdir -p "$logs" "$errs"
say() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$logs/main.log"; }

# --- soundfile, cffi, pycparser, soxr for this Python (pip; unzipping is the fallback: no wheel here
# has a .data folder, so extracting one is installing it) ---
if [ "$SITE" = none ]; then
    SITE=/nonexistent
elif ! PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" .whl/*.whl >>"$logs/main.log" 2>&1; then
    say "pip install failed; unzipping the wheels into $SITE"
    "$PY" -c "import glob, sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sorted(glob.glob('.whl/*.whl'))]" "$SITE"
fi
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2} MPLCONFIGDIR=/tmp/mpl
if ! "$PY" -c "
import sys, torch, numpy, soundfile, soxr, tqdm, matplotlib, safetensors
print('python', sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__,
      'soundfile', soundfile.__version__, 'libsndfile', soundfile.__libsndfile_version__, 'soxr', soxr.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')
import desktop_app.cli, model.train, audio.io
assert sys.argv[1] != 'cuda' or torch.cuda.is_available(), 'no CUDA device'
" "${DEVICE:-cuda}" 2>&1 | tee -a "$logs/main.log"; then
    say "preflight failed (see above)"; exit 1
fi
[ -f .devdata/speech_commands/validation_list.txt ] && [ -d .devdata/extra_unknown ] \
    || { say "no .devdata pack (carry .devdata)"; exit 1; }

# --- launch ---
declare -A pid_of
names=()
for line in "${RUNS[@]}"; do
    read -r name extra <<<"$line"
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    names+=("$name")
    # shellcheck disable=SC2086  # COMMON and extra are word lists on purpose
    "$PY" -m desktop_app.cli train --out "$OUT/$name" $COMMON $extra >"$logs/$name.log" 2>"$errs/$name.err" &
    pid_of[$name]=$!
    say "started $name (pid $!): $extra"
done
[ ${#names[@]} -gt 0 ] || { say "no run matches: $*"; exit 2; }

# --- watch: until all are done or the deadline; a line of load and GPU use each minute ---
next_sample=$(( $(date +%s) + 30 ))
while :; do
    alive=0
    for name in "${names[@]}"; do kill -0 "${pid_of[$name]}" 2>/dev/null && alive=$((alive + 1)); done
    [ $alive -eq 0 ] && break
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
        say "deadline: killing $alive run(s) still going"
        for name in "${names[@]}"; do kill -TERM "${pid_of[$name]}" 2>/dev/null; done
        sleep 5
        for name in "${names[@]}"; do kill -KILL "${pid_of[$name]}" 2>/dev/null; done
        break
    fi
    if [ "$now" -ge "$next_sample" ]; then
        gpu=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | head -1)
        say "running $alive; load $(cut -d' ' -f1-3 /proc/loadavg); gpu ${gpu:-?}"
        next_sample=$((now + 60))
    fi
    sleep 3
done
for name in "${names[@]}"; do
    wait "${pid_of[$name]}"
    echo $? >"$errs/$name.rc"
    # stderr without the progress bars (tracebacks, warnings), at the end of the run's log
    tr '\r' '\n' <"$errs/$name.err" | grep -v -E '%\||^[[:space:]]*$' | tail -n 40 >"$errs/$name.errtail"
    if [ -s "$errs/$name.errtail" ]; then { echo "--- stderr ---"; cat "$errs/$name.errtail"; } >>"$logs/$name.log"; fi
done

# --- summary: one line per run ---
"$PY" - "$OUT" "$errs" "${names[@]}" <<'EOF' | tee "$OUT/summary.txt"
import json, re, sys
from pathlib import Path
out, errs, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
print(f"{'run':<8} {'status':<10} {'best_ep':>7} {'val_acc':>7} {'minutes':>7}  epochs  params")
for name in names:
    rc = (errs / f"{name}.rc").read_text().strip()
    config = out / name / "config.json"
    rows = [dict(re.findall(r"(\w+)=([\d.]+)", line)) for line in (out / "logs" / f"{name}.log").read_text().splitlines()
            if line.startswith("epoch=")]
    done = rows[-1]["epoch"] if rows else "0"
    if config.is_file():
        c = json.loads(config.read_text())
        t = c["training"]
        print(f"{name:<8} {'ok':<10} {t['best_epoch']:>7} {c['metrics']['validation']['accuracy']:>7.4f} "
              f"{t['minutes']:>7.2f}  {done}/{t['train']['epochs']}  {t['parameters']}")
    else:
        val = [(float(r["validation_accuracy"]), r["epoch"]) for r in rows if "validation_accuracy" in r]
        best = max(val, key=lambda v: (v[0], int(v[1]))) if val else (float("nan"), "-")
        minutes = float(rows[-1]["minutes"]) if rows else float("nan")
        status = "killed" if rc in ("137", "143", "-15", "-9") else f"rc={rc}"
        print(f"{name:<8} {status:<10} {best[1]:>7} {best[0]:>7.4f} {minutes:>7.2f}  {done}/?  (no model; best so far)")
print("val_acc: the EMA weights' accuracy on the validation split (its words + silence) at best_ep; the pack has no"
      " test clips, so the 'test' figures in the logs and reports (one silence clip) mean nothing")
EOF

# --- keep only what is worth bringing back; at most 8 files ---
find "$OUT" -name '*.png' -delete
n_files=$(find "$OUT" -type f | wc -l)
if [ "$n_files" -gt 8 ]; then
    tar -czf /tmp/runs.tar.gz -C "$OUT" .
    cp "$OUT/summary.txt" /tmp/summary.txt
    find "$OUT" -mindepth 1 -delete
    mv /tmp/runs.tar.gz /tmp/summary.txt "$OUT/"
fi
echo "[$(( $(date +%s) - start ))s] done: $(cd "$OUT" && find . -type f -printf '%p (%s B)\n' | sort | tr '\n' ' ')"

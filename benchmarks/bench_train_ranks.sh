#!/usr/bin/env bash
# Training throughput, one process against several (torchrun, gloo), same data and run length.
#   benchmarks/bench_train_ranks.sh [MAX_CLIPS] [EPOCHS]    (defaults 4000, 2; needs ../shared/data)
# Prints clips per second (median over epochs, from each run's config.json). Both runs use the same
# global batch (128): under torchrun each of the 2 ranks makes and trains 64 of it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${DATA:-../shared/data}"
clips="${1:-4000}"
epochs="${2:-2}"
out="$(mktemp -d)"
common=(train --data "$data/speech_commands" "$data/speech_commands_logmel" --max-clips "$clips"
        --epochs "$epochs" --eval-every "$epochs" --batch-size 128 --lr 5e-3 --quiet)
.venv/bin/speechcmd "${common[@]}" --out "$out/one" --threads 2 >/dev/null
OMP_NUM_THREADS=1 .venv/bin/torchrun --standalone --nproc_per_node 2 -m desktop_app.cli "${common[@]}" \
    --out "$out/two" --threads 1 >/dev/null 2>"$out/torchrun.log"
for run in one two; do
    .venv/bin/python -c "import json,sys; t=json.load(open(sys.argv[1]))['training']; \
print(f\"{sys.argv[2]}: world_size {t['world_size']}, {t['clips_per_s']:.0f} clips/s, {t['minutes']:.2f} min\")" \
        "$out/$run/config.json" "$run"
done
rm -rf "$out"

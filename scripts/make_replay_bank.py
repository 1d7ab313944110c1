#!/usr/bin/env python3
"""Writes a model folder's replay bank (the training features `speechcmd enroll` mixes in against
forgetting) for a model trained before `train` wrote it itself.

    .venv/bin/python scripts/make_replay_bank.py --model assets/model \
        --data ../shared/data/speech_commands ../shared/data/speech_commands_logmel

Takes the training clips of the folders (never validation or test speakers), 50 per label at seed 0,
as `train` does. `--name-words` keeps a bank's clips and only adds which word each one says (banks
written before 2026-12-07 do not say), found by matching its features to the folders' training clips;
the clips it cannot find (talk crops, other extra speech) stay unnamed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np                                  # noqa: E402

from model import data, feature_data                # noqa: E402
from model.checkpoint import read_model_spec        # noqa: E402
from model.replay_bank import REPLAY_FILE, clip_word, save_replay_bank   # noqa: E402
from model.train import REPLAY_PER_LABEL            # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-label", type=int, default=REPLAY_PER_LABEL, help="clips kept per label")
    parser.add_argument("--name-words", action="store_true", help="keep the bank's clips, add their words")
    args = parser.parse_args()
    spec = read_model_spec(args.model)
    parts = []
    for root in args.data:
        folder = feature_data.open_folder(root)
        clips, _ = folder.load(folder.splits["train"], spec.frontend)
        parts.append(clips)
        if folder.silence_items():
            silence, _ = folder.load(folder.silence_items(), spec.frontend)
            parts.append(silence)
        else:   # a wav folder: silence cut from the training region of its noise recordings
            noises = data.load_noise(folder.root, spec.frontend)
            cut = data.silence_clips(noises, "train", args.per_label, spec.frontend, args.seed)
            parts.append(feature_data.FeatureSet(feature_data.wav_features(cut.waves, spec.frontend), cut.labels,
                                                 np.zeros(len(cut), bool), cut.paths))
    clips = feature_data.concat(*parts)
    if args.name_words:
        path = name_words(Path(args.model) / REPLAY_FILE, clips)
    else:
        path = save_replay_bank(args.model, clips, spec.labels, args.per_label, args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def name_words(path: Path, clips: feature_data.FeatureSet) -> Path:
    """Adds `words` to an existing bank: each clip's word where its float16 features equal a training clip's."""
    with np.load(path, allow_pickle=False) as bank:
        saved = {name: bank[name] for name in bank.files}
    by_bytes = {clips.feats[i].astype(np.float16).tobytes(): clip_word(clips.paths[i]) for i in range(len(clips))}
    words = [by_bytes.get(f.astype(np.float16).tobytes(), "") for f in saved["feats"]]
    print(f"named {sum(bool(w) for w in words)} of {len(words)} clips")
    np.savez_compressed(path, **{**saved, "words": np.array(words)})
    return path


if __name__ == "__main__":
    main()

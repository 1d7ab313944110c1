"""RNN vs LSTM vs GRU at matched parameter counts, same recipe; and how far back each one's gradient reaches.

    .venv/bin/python benchmarks/compare_cells.py --out runs/cells [--epochs 25] [--reuse gru=assets/model] \
        [--skip-training]

Trains one model per cell with the shipped model's recipe (scripts/train_shipped_model.sh with CELL and
HIDDEN: the wav set plus the 2,294-speaker image set, same augmentation, seed and epochs), or takes an
existing folder trained with that recipe (`--reuse gru=assets/model`: the shipped GRU is that recipe at
hidden 128). Prints a table (both validation sets, wav test, parameters, microseconds per streaming frame
on one thread, training speed) and writes two plots: docs/cells_curves.png (validation accuracy per
epoch: where each cell stops improving) and docs/cells_memory.png (the norm of d(loss)/d(input frame)
against how many frames before the decision that frame was, averaged over wav validation clips that sit
at the end of 1 s of noise). A plain RNN's curve falls off fastest: the vanishing gradient through time
of the source material.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from audio.features import LogMel  # noqa: E402
from model.checkpoint import load_checkpoint  # noqa: E402
from model.data import load_eval_split, load_noise, random_noise_clip  # noqa: E402

# Hidden sizes chosen so that the recurrent layers (after a 64-channel causal convolution) have about
# 174k parameters each: GRU 3(64h+h^2+2h)+3(2h^2+2h), LSTM the same with 4 gates, RNN with 1.
HIDDEN = {"rnn": 229, "lstm": 110, "gru": 128}


def train_cell(cell: str, out: Path, epochs: int) -> None:
    env = {**os.environ, "CELL": cell, "HIDDEN": str(HIDDEN[cell]), "EPOCHS": str(epochs), "TUNE": "0"}
    subprocess.run([str(ROOT / "scripts/train_shipped_model.sh"), str(out)], check=True, env=env, cwd=ROOT)


def us_per_frame(network, n_mels: int) -> float:
    torch.set_num_threads(1)
    frames = torch.randn(1, 1000, n_mels)
    with torch.inference_mode():
        best = 1e9
        for _ in range(3):
            start, state = time.perf_counter(), None
            for i in range(0, 1000, 10):  # ten frames per call, as the recognizer gets them in 100 ms blocks
                _, state = network(frames[:, i:i + 10], state)
            best = min(best, time.perf_counter() - start)
    return best / 1000 * 1e6


def gradient_by_lag(model, waves: np.ndarray, labels: np.ndarray, noise_prefix: np.ndarray) -> np.ndarray:
    """Mean ||d loss / d frame_t|| for t counted back from the decision frame, [frames]."""
    log_mel = LogMel(model.frontend)
    network = model.network.eval()  # eval mode: no dropout; CPU recurrent layers backpropagate in it
    x = torch.cat([torch.from_numpy(noise_prefix), torch.as_tensor(waves).float() / 32767.0], dim=1)
    frames = log_mel(x).requires_grad_(True)
    logits, _ = network(frames)
    loss = torch.nn.functional.cross_entropy(logits[:, -1], torch.as_tensor(labels), reduction="sum")
    loss.backward()
    norms = frames.grad.norm(dim=2).mean(dim=0).numpy()
    return norms[::-1]  # index 0 = the decision frame


def _save(fig, ax, xlabel: str, ylabel: str, title: str, path: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def pooled_validation(row: dict, n_clips: dict[str, int]) -> float:
    """Today's selection score from one history row: accuracy pooled over the validation sets (not the
    row's own `selection_score`: v6 was trained when that was the mean of the sets' figures)."""
    names = [name for name in n_clips if f"{name}_accuracy" in row]
    return sum(row[f"{name}_accuracy"] * n_clips[name] for name in names) / sum(n_clips[name] for name in names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/speech_commands"),
                        help="the wav Speech Commands folder (validation clips and noise for the gradient plot)")
    parser.add_argument("--out", default="runs/cells")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--reuse", nargs="*", default=[], metavar="CELL=DIR",
                        help="take this cell's model from DIR instead of training it (same recipe)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "cells_memory.png"))
    parser.add_argument("--curves", default=str(ROOT / "docs" / "cells_curves.png"))
    args = parser.parse_args()
    out = Path(args.out)
    folders = {cell: out / cell for cell in HIDDEN}
    for item in args.reuse:
        cell, _, path = item.partition("=")
        if cell not in HIDDEN or not path:
            parser.error(f"--reuse takes CELL=DIR with CELL one of {', '.join(HIDDEN)}, not {item!r}")
        folders[cell] = Path(path)
    if not args.skip_training:
        for cell, folder in folders.items():
            if folder.parent == out:
                train_cell(cell, folder, args.epochs)

    rows, curves, histories = [], {}, {}
    for cell, folder in folders.items():
        model = load_checkpoint(folder)
        if model.network.cfg.cell != cell:
            sys.exit(f"{folder} holds a {model.network.cfg.cell} network, not {cell}")
        metrics, training = model.extra["metrics"], model.extra["training"]
        n_clips = {name: m["clips"] for name, m in metrics.items() if name.startswith("validation") and "clips" in m}
        history = json.loads((folder / "report.json").read_text())["history"]
        histories[cell] = [(row["epoch"], pooled_validation(row, n_clips)) for row in history
                           if "validation_accuracy" in row]
        best = max(score for _, score in histories[cell])
        # "Stops improving": the first epoch within 0.3 points of the run's best pooled validation.
        plateau = next(epoch for epoch, score in histories[cell] if score >= best - 0.003)
        clips = load_eval_split(args.data, "validation", model.frontend)
        rng = np.random.default_rng(0)
        pick = rng.permutation(len(clips))[:128]
        noises = load_noise(args.data, model.frontend)
        prefix = np.stack([random_noise_clip(noises, "validation", model.frontend.clip_samples, rng) for _ in pick])
        curves[cell] = gradient_by_lag(model, clips.waves[pick], clips.labels[pick], prefix)
        rows.append({"cell": cell, "folder": str(folder), "hidden": model.network.cfg.hidden_size,
                     "parameters": model.network.n_parameters(),
                     "validation_wav": metrics["validation"]["accuracy"],
                     "validation_images": metrics.get("validation_images", {}).get("accuracy"),
                     "test_wav": metrics["test"]["accuracy"],
                     "best_epoch": training["best_epoch"], "epochs": len(history), "within_0.3_points_at": plateau,
                     "us_per_frame": us_per_frame(model.network, model.frontend.n_mels),
                     "train_minutes": training["minutes"], "clips_per_s": training.get("clips_per_s"),
                     "grad_at_1s_over_grad_at_0": float(curves[cell][100] / curves[cell][0])})
    print(json.dumps(rows, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for cell, points in histories.items():
        ax.plot([e for e, _ in points], [s for _, s in points], marker=".", label=cell.upper())
    _save(fig, ax, "epoch", "validation accuracy (both sets, pooled)",
          "Each cell with the shipped recipe: when it stops improving", args.curves)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for cell, curve in curves.items():
        lags_ms = np.arange(curve.size) * model.frontend.hop_ms
        ax.semilogy(lags_ms, curve / curve[0], label=cell.upper())
    ax.axvline(model.frontend.clip_ms, color="gray", linestyle=":", linewidth=1)
    ax.text(model.frontend.clip_ms + 20, 1e-1, "noise before the word", fontsize=8, color="gray")
    _save(fig, ax, "how long before the decision the input frame was (ms)",
          "gradient norm, relative to the last frame", "How far back each trained cell's gradient reaches", args.plot)


if __name__ == "__main__":
    main()

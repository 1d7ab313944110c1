"""RNN vs LSTM vs GRU at matched parameter counts, same recipe; and how far back each one's gradient reaches.

    .venv/bin/python benchmarks/compare_cells.py --data ../shared/data/speech_commands --out runs/cells \
        [--epochs 30] [--skip-training]

Trains one model per cell with `speechcmd train` (same data, augmentation, seed, epochs), then prints
a table (validation/test accuracy, parameters, microseconds per streaming frame on one thread) and
writes docs/cells_memory.png: the norm of d(loss)/d(input frame) against how many frames before the
decision that frame was, averaged over validation clips that sit at the end of 1 s of noise. A plain
RNN's curve falls off fastest: the vanishing gradient through time of the source material.
"""
from __future__ import annotations

import argparse
import json
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


def train_all(data: str, out: Path, epochs: int) -> dict[str, float]:
    minutes = {}
    for cell, hidden in HIDDEN.items():
        start = time.time()
        subprocess.run([str(ROOT / ".venv/bin/speechcmd"), "train", "--data", data, "--out", str(out / cell),
                        "--cell", cell, "--hidden-size", str(hidden), "--epochs", str(epochs), "--quiet"], check=True)
        minutes[cell] = (time.time() - start) / 60
    return minutes


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="runs/cells")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "cells_memory.png"))
    args = parser.parse_args()
    out = Path(args.out)
    minutes = {} if args.skip_training else train_all(args.data, out, args.epochs)

    rows, curves = [], {}
    for cell in HIDDEN:
        model = load_checkpoint(out / cell)
        metrics = model.extra["metrics"]
        clips = load_eval_split(args.data, "validation", model.frontend)
        rng = np.random.default_rng(0)
        pick = rng.permutation(len(clips))[:128]
        noises = load_noise(args.data, model.frontend)
        prefix = np.stack([random_noise_clip(noises, "validation", model.frontend.clip_samples, rng) for _ in pick])
        curves[cell] = gradient_by_lag(model, clips.waves[pick], clips.labels[pick], prefix)
        rows.append({"cell": cell, "hidden": HIDDEN[cell], "parameters": model.network.n_parameters(),
                     "validation": metrics["validation"]["accuracy"], "test": metrics["test"]["accuracy"],
                     "us_per_frame": us_per_frame(load_checkpoint(out / cell).network, model.frontend.n_mels),
                     "train_minutes": minutes.get(cell, model.extra["training"]["minutes"]),
                     "grad_at_1s_over_grad_at_0": float(curves[cell][100] / curves[cell][0])})
    print(json.dumps(rows, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for cell, curve in curves.items():
        lags_ms = np.arange(curve.size) * model.frontend.hop_ms
        ax.semilogy(lags_ms, curve / curve[0], label=cell.upper())
    ax.axvline(model.frontend.clip_ms, color="gray", linestyle=":", linewidth=1)
    ax.text(model.frontend.clip_ms + 20, 1e-1, "noise before the word", fontsize=8, color="gray")
    ax.set_xlabel("how long before the decision the input frame was (ms)")
    ax.set_ylabel("gradient norm, relative to the last frame")
    ax.set_title("How far back each trained cell's gradient reaches", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()

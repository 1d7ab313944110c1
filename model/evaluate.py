"""Clip classification and accuracy metrics.

A clip's decision is the posterior at its last frame, from a zero state: the same thing the streaming
recognizer computes after a fresh start (tests prove the sequence and step-by-step runs agree).
"""
from __future__ import annotations

import numpy as np
import torch

from audio.features import LogMel
from model.network import RecurrentClassifier


@torch.inference_mode()
def final_frame_posteriors(network: RecurrentClassifier, log_mel: LogMel, waves: np.ndarray,
                           batch_size: int = 256) -> np.ndarray:
    """waves [N, n_samples] (int16 or float) -> posteriors [N, C] at each clip's last frame."""
    out = []
    for start in range(0, len(waves), batch_size):
        batch = torch.as_tensor(waves[start:start + batch_size])
        if batch.dtype == torch.int16:
            batch = batch.float() / 32767.0
        out.append(feature_posteriors(network, log_mel(batch), batch_size))
    return np.concatenate(out) if out else np.zeros((0, network.cfg.n_labels), np.float32)


@torch.inference_mode()
def feature_posteriors(network: RecurrentClassifier, feats, batch_size: int = 256) -> np.ndarray:
    """features [N, T, mel] (numpy or torch, any float type) -> posteriors [N, C] at each clip's last frame."""
    network.eval()
    device = network.head.weight.device
    out = []
    for start in range(0, len(feats), batch_size):
        batch = torch.as_tensor(feats[start:start + batch_size]).float().to(device)
        logits, _ = network(batch)
        out.append(torch.softmax(logits[:, -1], dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, network.cfg.n_labels), np.float32)


def metrics(labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]) -> dict:
    """Accuracy, per-class accuracy (recall) and the confusion matrix (rows = truth)."""
    n = len(label_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = {}
    for i, name in enumerate(label_names):
        total = int(confusion[i].sum())
        per_class[name] = {"accuracy": (float(confusion[i, i]) / total) if total else None, "clips": total}
    return {
        "accuracy": float((labels == predictions).mean()) if len(labels) else 0.0,
        "clips": int(len(labels)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def format_metrics(name: str, result: dict, label_names: tuple[str, ...]) -> str:
    lines = [f"{name}: accuracy {result['accuracy']:.4f} on {result['clips']} clips"]
    for label, row in result["per_class"].items():
        acc = "  n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"  {label:<10} {acc}  ({row['clips']} clips)")
    width = max(len(x) for x in label_names)
    short = [x.strip("_")[:5] for x in label_names]
    lines.append("confusion (rows: truth, columns: prediction)")
    lines.append(" " * (width + 1) + " ".join(f"{s:>5}" for s in short))
    for label, row in zip(label_names, result["confusion"]):
        lines.append(f"{label:>{width}} " + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)

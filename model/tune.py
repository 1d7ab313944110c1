"""Choosing the detector's smoothing window, threshold and suppression time on validation streams.

The network runs once over the stream (the full-sequence run equals the streaming one, see
tests/test_network.py); every detector setting is then replayed on those posteriors, which is cheap.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import torch

from audio.features import LogMel
from model.checkpoint import LoadedModel
from model.detector import Detector, DetectorConfig
from model.stream_eval import WordSpan, pool_scores, score_stream

SMOOTHING_MS = (50.0, 100.0, 150.0, 250.0, 400.0)
SUPPRESSION_MS = (500.0, 750.0, 1000.0, 1500.0)
THRESHOLDS = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2))


@torch.inference_mode()
def stream_posteriors(model: LoadedModel, samples: np.ndarray, chunk_s: float = 60.0) -> np.ndarray:
    """Raw posteriors [frames, C] of a long recording, state carried across chunks of `chunk_s`."""
    log_mel = LogMel(model.frontend)
    frames = log_mel(torch.from_numpy(samples))
    out, state = [], None
    step = int(chunk_s * 1000 / model.frontend.hop_ms)
    for start in range(0, frames.shape[0], step):
        logits, state = model.network(frames[start:start + step][None], state)
        out.append(torch.softmax(logits[0], dim=-1).numpy())
    return np.concatenate(out)


def replay(model: LoadedModel, posteriors: np.ndarray, cfg: DetectorConfig):
    return Detector.for_model(model, cfg).process(posteriors)[1]


def objective(score: dict) -> float:
    """Correct words, minus wrong ones, minus false positives counted twice (they annoy users most)."""
    return score["correct_pct"] - score["wrong_pct"] - 2.0 * score["false_positive_pct"]


def pooled_score(model: LoadedModel, streams: list[tuple[np.ndarray, list[WordSpan], float]],
                 cfg: DetectorConfig) -> dict:
    """One score over several (posteriors, spans, duration_s) streams, as if they were one recording."""
    return pool_scores([score_stream(replay(model, posteriors, cfg), spans, duration_s)
                        for posteriors, spans, duration_s in streams]).as_dict()


def grid_search(model: LoadedModel, streams: list[tuple[np.ndarray, list[WordSpan], float]],
                isolation_gate: float = 0.0):
    """Returns (best config, its pooled score, all rows) over the SMOOTHING x SUPPRESSION x THRESHOLD
    grid; `isolation_gate` is fixed (chosen on other grounds, see docs/PERFORMANCE.md)."""
    rows = []
    for smoothing, suppression, threshold in itertools.product(SMOOTHING_MS, SUPPRESSION_MS, THRESHOLDS):
        cfg = DetectorConfig(smoothing_ms=smoothing, threshold=float(threshold), suppression_ms=suppression,
                             isolation_gate=isolation_gate)
        rows.append((cfg, pooled_score(model, streams, cfg)))
    best_cfg, best_score = max(rows, key=lambda row: objective(row[1]))
    return best_cfg, best_score, rows


def threshold_curve(model: LoadedModel, streams: list[tuple[np.ndarray, list[WordSpan], float]],
                    cfg: DetectorConfig) -> list[tuple[float, dict]]:
    return [(float(t), pooled_score(model, streams, replace(cfg, threshold=float(t)))) for t in THRESHOLDS]

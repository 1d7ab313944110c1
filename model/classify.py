"""Classifying whole clips (files).

Clips up to the model's clip length (1 s) are zero-padded at the end to 1 s, as Speech Commands
clips are, and decided at their last frame. Longer clips run through the network with the state
carried (as in streaming); the answer is read at the frame where speech is most evident, i.e. where
the highest probability of any label other than `_silence_` peaks, counting from the 1 s mark (where a
1 s clip is decided; before it the network has heard too little). That gives the word in a 3 s file
with a word in it, and `_silence_` for a file of only noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audio.features import LogMel
from audio.io import AudioReadError, read_audio
from model.checkpoint import LoadedModel
from model.data import fit_length
from model.evaluate import final_frame_posteriors
from model.labels import SILENCE


@dataclass(frozen=True)
class ClipResult:
    path: str
    label: str | None = None
    score: float | None = None
    error: str | None = None


class ClipClassifier:
    def __init__(self, model: LoadedModel, batch_size: int = 64):
        self.model = model
        self.log_mel = LogMel(model.frontend)
        self.batch_size = batch_size
        self._speech_labels = np.array([label != SILENCE for label in model.labels])

    def _result(self, path: Path, posteriors: np.ndarray) -> ClipResult:
        top = int(np.argmax(posteriors))
        return ClipResult(str(path), self.model.labels[top], float(posteriors[top]))

    @torch.inference_mode()
    def _long_clip(self, samples: np.ndarray) -> np.ndarray:
        logits, _ = self.model.network(self.log_mel(torch.from_numpy(samples))[None])
        posteriors = torch.softmax(logits[0], dim=-1).numpy()
        first = self.model.frontend.n_frames(self.model.frontend.clip_samples) - 1
        best_frame = first + int(np.argmax(posteriors[first:, self._speech_labels].max(axis=1)))
        return posteriors[best_frame]

    def classify(self, paths: list[Path]):
        """Yields a ClipResult per path, in order. Unreadable files give a result with `error`."""
        n_clip = self.model.frontend.clip_samples
        for start in range(0, len(paths), self.batch_size):
            chunk = paths[start:start + self.batch_size]
            results: list[ClipResult | None] = [None] * len(chunk)
            short_index, short_waves = [], []
            for i, path in enumerate(chunk):
                try:
                    samples = read_audio(path, self.model.frontend.sample_rate_hz)
                except AudioReadError as exc:
                    results[i] = ClipResult(str(path), error=str(exc))
                    continue
                if samples.size <= n_clip:
                    short_index.append(i)
                    short_waves.append(fit_length(samples, n_clip))
                else:
                    results[i] = self._result(path, self._long_clip(samples))
            if short_waves:
                posteriors = final_frame_posteriors(self.model.network, self.log_mel, np.stack(short_waves))
                for i, row in zip(short_index, posteriors):
                    results[i] = self._result(chunk[i], row)
            yield from results

"""The streaming recognizer: samples in, events out, the recurrent state carried between calls.

One class serves the live app, `speechcmd detect`, `speechcmd listen` and streaming evaluation, so
live and offline results agree.
"""
from __future__ import annotations

import numpy as np
import torch

from audio.features import StreamingLogMel
from model.checkpoint import LoadedModel
from model.detector import Detector, DetectorConfig
from model.labels import COMMANDS
from model.stream_update import StreamUpdate


class StreamingRecognizer:
    def __init__(self, model: LoadedModel, detector: DetectorConfig | None = None):
        self.model = model
        self.network = model.network.eval()
        self.frontend = StreamingLogMel(model.frontend)
        cfg = detector or model.detector
        self.detector = Detector(cfg, model.labels, COMMANDS, model.frontend.hop_ms, model.frontend.window_ms)
        self.reset()

    @property
    def threshold(self) -> float:
        return self.detector.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.detector.threshold = float(value)

    def reset(self) -> None:
        """Back to the state of a freshly built recognizer (threshold changes are kept)."""
        self.frontend.reset()
        self.detector.reset()
        self._state = self.network.initial_state(1)
        self._n_frames = 0

    @torch.inference_mode()
    def process(self, samples: np.ndarray) -> StreamUpdate:
        """samples [n] float32 mono at the model's sample rate, any n."""
        frames = self.frontend.process(samples)
        start = self._n_frames
        n_new = frames.shape[0]
        if n_new == 0:
            n_labels = len(self.model.labels)
            empty = np.zeros((0, n_labels), np.float32)
            return StreamUpdate(start, frames.numpy(), empty,
                                np.zeros((0, self.network.cfg.hidden_size), np.float32), [])
        # All new frames go through the network in one call: the same recurrence, less Python per frame.
        logits, self._state, hidden = self.network(frames[None], self._state, return_hidden=True)
        posteriors = torch.softmax(logits[0], dim=-1).numpy()
        smoothed, events = self.detector.process(posteriors)
        self._n_frames += n_new
        return StreamUpdate(start, frames.numpy(), smoothed, hidden[0].numpy(), events)

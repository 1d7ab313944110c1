"""The streaming recognizer: samples in, events out, the recurrent state carried between calls.

One class serves the live app, `speechcmd detect`, `speechcmd listen` and streaming evaluation, so
live and offline results agree. It imports torch only to step a torch network: a NumpyModel
(`model/numpy_network.py`) runs without it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audio.mel import NumpyStreamingLogMel
from model.detector import Detector, DetectorConfig
from model.model_config import read_model_spec
from model.numpy_network import NumpyModel, NumpyNetwork, load_numpy_model
from model.stream_update import StreamUpdate


def load_streaming_model(folder: str | Path):
    """What `StreamingRecognizer` needs from a model folder, as cheaply as possible: a NumpyModel for
    a GRU network (no torch), else the torch checkpoint. Raises ModelLoadError."""
    if read_model_spec(folder).network.cell == "gru":
        return load_numpy_model(folder)
    from model.checkpoint import load_checkpoint
    return load_checkpoint(folder)


class StreamingRecognizer:
    """`model`: a NumpyModel (stepped in numpy, no torch) or a checkpoint.LoadedModel, whose network
    `engine` "numpy" steps with model/numpy_network.py (about half the cost on the small blocks of
    live audio; GRU only), "torch" with the PyTorch module, "auto" in numpy where it can. Both give
    the same posteriors to float32 rounding (tests/test_numpy_network.py)."""

    def __init__(self, model, detector: DetectorConfig | None = None, engine: str = "auto"):
        if engine not in ("auto", "numpy", "torch"):
            raise ValueError(f"engine must be auto, numpy or torch, not {engine!r}")
        self.model = model
        self.network = None            # the torch module, when it is the one stepped
        if isinstance(model, NumpyModel):
            if engine == "torch":
                raise ValueError("a NumpyModel has no torch network: load it with load_checkpoint")
            self.numpy_network = model.network
        else:
            self.numpy_network = NumpyNetwork.from_torch(model.network) if engine != "torch" else None
            if engine == "numpy" and self.numpy_network is None:
                raise ValueError(f"the numpy engine runs GRU networks only, not {model.network.cfg.cell}")
            if self.numpy_network is None:
                self.network = model.network.eval()
        self.hidden_size = model.spec.network.top_size
        if self.numpy_network:
            self.frontend = NumpyStreamingLogMel(model.frontend)
        else:
            from audio.features import StreamingLogMel
            self.frontend = StreamingLogMel(model.frontend)
        cfg = detector or model.detector
        self.detector = Detector.for_model(model, cfg)
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
        self._state = self.numpy_network.initial_state() if self.numpy_network else self.network.initial_state(1)
        self._n_frames = 0

    def process(self, samples: np.ndarray) -> StreamUpdate:
        """samples [n] float32 mono at the model's sample rate, any n."""
        frames = self.frontend.process(samples)
        start = self._n_frames
        if frames.shape[0] == 0:
            n_labels = len(self.model.labels)
            return StreamUpdate(start, np.asarray(frames), np.zeros((0, n_labels), np.float32),
                                np.zeros((0, self.hidden_size), np.float32), [])
        # All new frames go through the network in one call: the same recurrence, less Python per frame.
        if self.numpy_network:
            logits, self._state, hidden = self.numpy_network.forward(frames, self._state)
        else:
            logits, hidden = self._torch_step(frames)
        smoothed, events = self.detector.process(_softmax(logits))
        self._n_frames += frames.shape[0]
        return StreamUpdate(start, np.asarray(frames), smoothed, hidden, events)

    def _torch_step(self, frames):
        import torch
        with torch.inference_mode():
            logits, self._state, hidden = self.network(frames[None], self._state, return_hidden=True)
        return logits[0].numpy(), hidden[0].numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)

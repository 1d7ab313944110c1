"""A model whose settings are known at once and whose network loads in a background thread.

Why: the window, the device list and the live spectrogram need only `config.json`, so the GUI shows
and draws while the network loads; the worker keeps the audio heard meanwhile and runs the
recognizer over it once the network is ready, so no command spoken during loading is lost. A GRU
network loads into numpy (model/numpy_network.py) in a fraction of a second; other cells need
`import torch`, 2-3 s on a small machine (the pinned wheel is the CUDA build).
"""
from __future__ import annotations

import threading
from pathlib import Path

from model.model_config import ModelLoadError, ModelSpec, read_model_spec


def use_one_torch_thread() -> None:
    """The live recognizer runs a few small recurrent steps per 80 ms call: spreading that over several
    threads costs more in hand-offs than it saves, and would take cores from the GUI and audio threads."""
    import torch
    torch.set_num_threads(1)


class BackgroundModel:
    def __init__(self, spec: ModelSpec, loaded=None):
        self.spec = spec
        self._loaded = loaded            # a NumpyModel (GRU networks) or checkpoint.LoadedModel once ready
        self._error: str | None = None
        self._done = threading.Event()
        self._started = False
        if loaded is not None:
            self._done.set()

    @classmethod
    def from_folder(cls, folder: str | Path) -> "BackgroundModel":
        """Reads config.json now (raises ModelLoadError for a missing or bad folder); no torch yet."""
        return cls(read_model_spec(folder))

    @classmethod
    def of(cls, model) -> "BackgroundModel":
        """A BackgroundModel as it is, or one that is already loaded from a LoadedModel."""
        return model if isinstance(model, cls) else cls(model.spec, loaded=model)

    def start(self) -> None:
        """Begin loading (idempotent)."""
        if self._started or self._done.is_set():
            return
        self._started = True
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            from model.streaming import load_streaming_model
            if self.spec.network.cell != "gru":   # stepped in torch
                use_one_torch_thread()
            self._loaded = load_streaming_model(self.spec.path)
        except ModelLoadError as exc:
            self._error = str(exc)
        except Exception as exc:  # the loader thread must never die silently
            self._error = f"the model could not be loaded ({type(exc).__name__}: {exc})"
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    @property
    def loaded(self):
        """The LoadedModel if it has loaded, else None (never raises)."""
        return self._loaded if self._done.is_set() and self._error is None else None

    def get(self):
        """The LoadedModel, or None while it is still loading. Raises ModelLoadError if loading failed."""
        if not self._done.is_set():
            return None
        if self._error is not None:
            raise ModelLoadError(self._error)
        return self._loaded

    def wait(self, timeout_s: float | None = None):
        """Starts loading if needed and blocks until done: the LoadedModel (None on timeout)."""
        self.start()
        self._done.wait(timeout_s)
        return self.get()

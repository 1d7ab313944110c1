"""A checkpoint is a folder: `model.safetensors` (weights) + `config.json` (everything else).

Loading never unpickles: weights come from safetensors, settings from JSON (`model/model_config.py`
reads those without torch).
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from audio.config import FrontendConfig
from model.detector import DetectorConfig
from model.model_config import (CONFIG_FILE, WEIGHTS_FILE, LoadedModel, ModelLoadError, ModelSpec,  # noqa: F401
                                default_model_dir, read_model_spec)   # (LoadedModel and the rest re-exported)
from model.network import RecurrentClassifier

FORMAT_VERSION = 1



def save_checkpoint(folder: str | Path, network: RecurrentClassifier, labels, frontend: FrontendConfig,
                    detector: DetectorConfig, extra: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    config = {
        "format_version": FORMAT_VERSION,
        "labels": list(labels),
        "frontend": frontend.to_dict(),
        "network": network.cfg.to_dict(),
        "detector": detector.to_dict(),
        **(extra or {}),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_checkpoint(folder: str | Path) -> LoadedModel:
    spec = read_model_spec(folder)
    network = RecurrentClassifier(spec.network)
    try:
        network.load_state_dict(load_file(str(spec.path / WEIGHTS_FILE)))
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise ModelLoadError(f"{spec.path / WEIGHTS_FILE} could not be loaded ({str(exc).splitlines()[0]})") from None
    network.eval()
    return LoadedModel(network, spec.labels, spec.frontend, spec.detector, spec.extra, spec.path)

"""A checkpoint is a folder: `model.safetensors` (weights) + `config.json` (everything else).

Loading never unpickles: weights come from safetensors, settings from JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.torch import load_file, save_file

from audio.config import FrontendConfig
from model.detector import DetectorConfig
from model.network import NetworkConfig, RecurrentClassifier

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


class ModelLoadError(Exception):
    """A model folder is missing, incomplete or corrupt. The message says which and why."""


@dataclass
class LoadedModel:
    network: RecurrentClassifier
    labels: tuple[str, ...]
    frontend: FrontendConfig
    detector: DetectorConfig
    extra: dict = field(default_factory=dict)   # data summary, metrics, training settings
    path: Path | None = None


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
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"model folder {folder} does not exist")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ModelLoadError(f"model folder {folder} has no {name}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        labels = tuple(config.pop("labels"))
        frontend = FrontendConfig.from_dict(config.pop("frontend"))
        net_cfg = NetworkConfig.from_dict(config.pop("network"))
        detector = DetectorConfig.from_dict(config.pop("detector", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{folder / CONFIG_FILE} is not a valid model config ({exc})") from None
    if len(labels) != net_cfg.n_labels or net_cfg.n_mels != frontend.n_mels:
        raise ModelLoadError(f"{folder / CONFIG_FILE}: labels/mel bins disagree with the network config")
    network = RecurrentClassifier(net_cfg)
    try:
        network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise ModelLoadError(f"{folder / WEIGHTS_FILE} could not be loaded ({str(exc).splitlines()[0]})") from None
    network.eval()
    return LoadedModel(network, labels, frontend, detector, config, folder)


def default_model_dir() -> Path:
    """The model shipped with the app (works from a checkout and from an installed package)."""
    import assets
    return Path(assets.__file__).resolve().parent / "model"

"""What a model folder's `config.json` says, read without torch.

Why a torch-free module: importing torch takes 2-3 s on a small machine, and the window, the live
spectrogram and the model's description need only these settings. `model/checkpoint.py` loads the
weights on top of this.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from audio.config import DictConfig, FrontendConfig
from model.detector import DetectorConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


# PCEN (Wang et al. 2017, "Trainable frontend for robust and far-field keyword spotting"): the smoother's
# weight per 10 ms frame (a ~400 ms time constant) and the start values of the trainable exponents;
# the energies are scaled as for 32-bit integer audio, the scale those defaults were chosen for.
# (Here, not in model/network.py, so that the numpy forward pass needs no torch.)
PCEN_SMOOTHING = 0.025
PCEN_INIT = {"alpha": 0.98, "delta": 2.0, "r": 0.5}
PCEN_LOG_SCALE = 31 * math.log(2.0)
PCEN_EPS = 1e-6
PCEN_BLOCK_FRAMES = 128   # the smoother's closed form runs per block of this many frames: keeps d^-j in float32


class ModelLoadError(Exception):
    """A model folder is missing, incomplete or corrupt. The message says which and why."""


@dataclass(frozen=True)
class NetworkConfig(DictConfig):
    n_mels: int = 40
    n_labels: int = 12
    cell: str = "gru"              # gru | lstm | rnn
    conv_channels: int = 0         # 0: no convolution in front of the recurrent layers
    conv_kernel_frames: int = 5
    hidden_size: int = 128
    n_layers: int = 2
    dropout: float = 0.1
    input_norm: str = "fixed"      # fixed: per-bin mean/std of the training features | pcen: per-channel
                                   # energy normalisation (causal, adapts to loudness and channel)
    # PCEN works on band power: the frontend's features are pcen_feature_scale * ln(power) +
    # pcen_feature_offset (train sets these from the frontend; 1 and 0 are v4's natural-log frontend).
    pcen_feature_scale: float = 1.0
    pcen_feature_offset: float = 0.0
    extra_top_units: int = 0       # personal models (enrollment): units added to the top recurrent layer
                                   # that the base units cannot see, so the base's outputs are kept (GRU)

    unknown_words: int = 0         # personal models: the last this many labels are words carved out of
    unknown_index: int = -1        # ...the label at this index (`_unknown_`), by a second head (see network.py)

    @property
    def uniform_layers(self) -> int:
        """Recurrent layers of `hidden_size` units (`rnn`); a personal model's wider top layer is not one."""
        return self.n_layers - 1 if self.extra_top_units else self.n_layers

    @property
    def top_size(self) -> int:
        """Width of the top recurrent layer: its output feeds the classifier (and the GUI's memory view)."""
        return self.hidden_size + self.extra_top_units


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a model except its weights."""
    labels: tuple[str, ...]
    frontend: FrontendConfig
    network: NetworkConfig
    detector: DetectorConfig
    extra: dict = field(default_factory=dict)   # data summary, metrics, training settings
    path: Path | None = None


@dataclass
class LoadedModel:
    """A model folder with its network loaded: a torch RecurrentClassifier (checkpoint.load_checkpoint)
    or, as NumpyModel, a NumpyNetwork (numpy_network.load_numpy_model). `network.cfg` is its NetworkConfig."""
    network: object
    labels: tuple[str, ...]
    frontend: FrontendConfig
    detector: DetectorConfig
    extra: dict = field(default_factory=dict)   # data summary, metrics, training settings
    path: Path | None = None

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.labels, self.frontend, self.network.cfg, self.detector, self.extra, self.path)


def read_model_spec(folder: str | Path) -> ModelSpec:
    """Reads and checks `config.json`; also checks that the weights file is there (not its contents)."""
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
        network = NetworkConfig.from_dict(config.pop("network"))
        detector = DetectorConfig.from_dict(config.pop("detector", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{folder / CONFIG_FILE} is not a valid model config ({exc})") from None
    if len(labels) != network.n_labels or network.n_mels != frontend.n_mels:
        raise ModelLoadError(f"{folder / CONFIG_FILE}: labels/mel bins disagree with the network config")
    return ModelSpec(labels, frontend, network, detector, config, folder)


def default_model_dir() -> Path:
    """The model shipped with the app (works from a checkout and from an installed package)."""
    import assets
    return Path(assets.__file__).resolve().parent / "model"

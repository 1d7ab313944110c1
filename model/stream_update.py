"""The streaming recognizer's output for one call, kept apart from it so the GUI can use it without
importing torch (see model/model_config.py for why)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.detector import Detection


@dataclass(frozen=True)
class StreamUpdate:
    """What one `process` call produced. Arrays have one row per new 10 ms frame (n may be 0)."""
    start_frame: int               # index of the first row since the stream began
    log_mel: np.ndarray            # [n, mel]
    posteriors: np.ndarray         # [n, C] smoothed
    hidden: np.ndarray             # [n, hidden] top recurrent layer output
    events: list[Detection]

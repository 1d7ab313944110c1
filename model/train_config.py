"""Training settings (no torch: the command line shows these defaults without loading it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """The defaults are the shipped model's recipe (scripts/train_shipped_model.sh adds the data)."""
    epochs: int = 25
    batch_size: int = 128
    learning_rate: float = 5e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: int = 2
    ema_decay: float = 0.998
    chain_prob: float = 0.5            # share of batches whose clips are chained into sequences
    chain_clips: int = 3               # clips per chained sequence
    talk_share: float = 0.25           # with talk (running speech): talk rows per batch row, `_unknown_` on
                                       # every frame (model/batches.py)
    talk_frame_weight: float = 1.0     # weight of that every-frame loss
    talk_hard_share: float = 0.5       # share of talk rows that end at a mined frame: one of the `mine_frames`
    mine_frames: int = 2000            # ...where the EMA model comes closest to firing a command, mined
    mine_every_epochs: int = 1         # ...again every this many epochs (0: never)
    silence_share: float = 0.1         # silence examples per word example, each epoch
    image_silence: str = "auto"        # the image set's `_silence_` crops: "auto" uses them only when no wav
                                       # folder has background noise (they are cut from the same six
                                       # recordings, at unknown positions, so they may hold the wav set's
                                       # held-out noise), "always", "never"
    extra_unknown_share: float = 0.05  # cap on extra unknown examples, per training word clip (split
                                       # evenly between the paths given)
    word_classes: tuple[str, ...] = ()  # `_unknown_` words (folder names, e.g. "dog") that a training-only
                                       # word head tells apart (network.split_unknown): the saved model
                                       # has the 12 labels, its inner representation has learnt to
                                       # separate words other than the commands (docs/ENROLL.md)
    seed: int = 1
    eval_every_epochs: int = 1
    max_clips: int = 0                 # 0: all; >0: a small subset (tests, quick experiments)
    threads: int = 0                   # 0: torch's default
    device: str = "cpu"                # where the network trains ("cuda": batches are still made on the CPU)

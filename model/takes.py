"""Enrollment takes: one user's recordings of a word, read, checked and centred as 1 s clips.

No torch here: the window checks each take the moment it is recorded (silent, clipped, too long), with
the same rules `speechcmd enroll` applies later (model/enroll.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from audio.io import AUDIO_SUFFIXES, AudioReadError, read_audio
from model.labels import SILENCE, UNKNOWN

NOT_COMMANDS = "_not_commands_"   # takes folder of sounds that fired a command and were not one


class EnrollError(Exception):
    """Enrollment cannot go on (a word with too few good takes, no takes at all, ...): one line.
    `skipped`: the takes the line refers to, for the caller to list before it."""

    def __init__(self, message: str, skipped: tuple = ()):
        super().__init__(message)
        self.skipped = tuple(skipped)


@dataclass(frozen=True)
class EnrollConfig:
    min_takes: int = 2               # good takes a word needs
    steps: int = 250                 # adaptation steps when the whole top layer adapts (re-recorded commands)
    personal_steps: int = 250        # ... when personal units do (new words, no command). 500 on the image validation
                                     # speakers' digits: 0.751 +- 0.020 new words against 0.711 +- 0.028, but 1.1
                                     # points more other words taken for them, twice as many new-word detections
                                     # in the training coffee orders (3.4 vs 1.6), twice the time: not kept
                                     # (docs/ENROLL.md)
    batch_size: int = 64
    learning_rate: float = 6e-3      # with personal units, and new words' output rows always (2e-3 left new
                                     # words under-trained: 0.936 vs 0.978, FSDD jackson)
    top_layer_learning_rate: float = 2e-3   # when the whole top layer adapts (re-recorded commands, extra_units 0)
    own_share: float = 0.5           # share of each batch from the user's takes (the rest: replay)
    extra_units: int = 32            # personal units added to the top GRU layer, the base units frozen, when
                                     # only new words are enrolled (0, re-recorded commands or another cell:
                                     # the whole top layer adapts)
    keep_base_share: float | None = None   # a whole top layer adapted for re-recorded commands (no new words) is
                                     # blended this share of the way back to the base weights afterwards
                                     # (WiSE-FT); None: the largest candidate the user's takes allow
    base_share_candidates: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    base_share_tolerance: float = 0.02   # the right word's mean probability on the takes may drop this much
                                     # (chosen on the image validation speakers: docs/ENROLL.md)
    copies_per_take: int = 16        # augmented copies of each take, made once
    replay_clips: int = 600          # replay examples used (from the bank), made once
    seed: int = 0
    threads: int = 2                 # torch threads while adapting (ten words x 5 takes on a slow VM: 59-92 s
                                     # on two, 74-110 s on one, the same weights; the window's live run is
                                     # stopped then, and the live path runs on one thread)
    # Take checks
    max_sound_s: float = 1.2         # more sound than this in a take: "too long"
    silent_peak_dbfs: float = -70.0  # a take whose loudest 10 ms is below this: "silent" (no signal at all)
    min_peak_snr_db: float = 10.0    # ... or whose loudest 10 ms stands less than this above the take's own
                                     # noise floor (its 10th percentile): judged against itself, so a quiet
                                     # microphone's clear word (peak -40 dBFS, floor -75) is used as it is
    clipped_share: float = 0.005     # share of samples at full scale that makes a take "clipped"
    short_ratio: float = 0.35        # sound shorter than this share of the word's median: "too short"
    trim_below_peak_db: float = 30.0  # the sound is where 10 ms frames are within this of the peak
    above_floor_db: float = 10.0     # ... or, when that is too long (a noisy take), this far above its noise floor


@dataclass(frozen=True)
class Take:
    word: str
    path: str
    samples: np.ndarray | None = None   # the centred 1 s clip
    sound_s: float = 0.0
    problem: str | None = None           # why the take is not used


def read_takes(folder: str | Path, cfg: EnrollConfig, sample_rate_hz: int, clip_samples: int) -> list[Take]:
    """Every audio file in the word folders of `folder`, read, trimmed and checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EnrollError(f"takes folder {folder} does not exist")
    takes = []
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if word_dir.name.startswith("_") and word_dir.name not in (UNKNOWN, NOT_COMMANDS):
            raise EnrollError(f"{word_dir}: a word folder cannot be named {word_dir.name!r} ({SILENCE} is made "
                              f"from noise; other names starting with _ are reserved)")
        # The user's false alarms ("Not a command" in the window) are other speech, as their talk is.
        word = UNKNOWN if word_dir.name == NOT_COMMANDS else word_dir.name
        for path in sorted(p for p in word_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            takes.append(check_take(word, path, cfg, sample_rate_hz, clip_samples))
    if not takes:
        raise EnrollError(f"{folder} has no word folders with recordings (expected e.g. {folder}/yes/1.wav)")
    for word in {t.word for t in takes if t.word != UNKNOWN}:
        good = [i for i, t in enumerate(takes) if t.word == word and t.problem is None]
        for i, problem in zip(good, too_short([takes[i].sound_s for i in good], cfg.short_ratio)):
            if problem:
                takes[i] = replace(takes[i], problem=problem)
    return takes


def too_short(sound_s: list[float], short_ratio: float) -> list[str | None]:
    """For one word's good takes (their seconds of sound): the problem of each that is far shorter than
    their median (probably cut off, or another word), None for the others. Needs 3 takes to judge."""
    if len(sound_s) < 3:
        return [None] * len(sound_s)
    median_s = float(np.median(sound_s))
    return [f"too short ({s:.2f} s of sound; the others have {median_s:.2f} s)" if s < short_ratio * median_s
            else None for s in sound_s]


def check_take(word: str, path: Path, cfg: EnrollConfig, sample_rate_hz: int, clip_samples: int) -> Take:
    try:
        samples = read_audio(path, sample_rate_hz)
    except AudioReadError as exc:
        return Take(word, str(path), problem=f"unreadable ({str(exc).split(': ', 1)[-1]})")
    if word == UNKNOWN:   # other speech: kept whole, cut into crops later
        return Take(word, str(path), samples, samples.size / sample_rate_hz)
    if np.mean(np.abs(samples) >= 0.999) > cfg.clipped_share:
        return Take(word, str(path), problem="clipped (too loud: move back from the microphone)")
    hop = sample_rate_hz // 100
    n_frames = samples.size // hop
    if n_frames == 0:
        return Take(word, str(path), problem="silent (no sound)")
    frames = samples[:n_frames * hop].reshape(n_frames, hop)
    energy_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    peak_db = float(energy_db.max())
    floor_db = float(np.percentile(energy_db, 10))
    if peak_db < cfg.silent_peak_dbfs:
        return Take(word, str(path), problem=f"silent (loudest moment {peak_db:.0f} dBFS)")
    if peak_db - floor_db < cfg.min_peak_snr_db:
        return Take(word, str(path), problem=f"silent (nothing stands out of the noise: the loudest moment is "
                                             f"{peak_db - floor_db:.0f} dB above the take's noise floor)")
    loud = np.flatnonzero(energy_db >= peak_db - cfg.trim_below_peak_db)
    first, last = int(loud[0]), int(loud[-1]) + 1
    sound_s = (last - first) * hop / sample_rate_hz
    if sound_s > cfg.max_sound_s:
        # A noisy microphone: its noise floor is within trim_below_peak_db of the word, so the whole
        # recording reads as sound (the Precise community's "computer" takes: 55 of 57). Then the sound
        # is what stands out of the floor (its 10th percentile), never closer than 10 dB to the peak.
        loud = np.flatnonzero(energy_db >= min(floor_db + cfg.above_floor_db, peak_db - 10.0))
        first, last = int(loud[0]), int(loud[-1]) + 1
        sound_s = (last - first) * hop / sample_rate_hz
    if sound_s > cfg.max_sound_s:
        return Take(word, str(path), sound_s=sound_s,
                    problem=f"too long ({sound_s:.1f} s of sound; say the word alone)")
    # Centred in a 1 s clip, as Speech Commands words are.
    centre = (first + last) * hop // 2
    start = centre - clip_samples // 2
    clip = np.zeros(clip_samples, np.float32)
    src = samples[max(0, start):start + clip_samples]
    clip[max(0, -start):max(0, -start) + src.size] = src
    return Take(word, str(path), clip, sound_s)

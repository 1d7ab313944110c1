"""scripts/synthesize_words.py: espeak-ng words laid out as Speech Commands clips."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.data import word_clips
from model.labels import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import synthesize_words  # noqa: E402


def test_other_words_are_neither_commands_nor_their_homophones():
    assert not set(synthesize_words.OTHER_WORDS) & (set(COMMANDS) | {"know", "write", "rite", "too", "oh"})
    assert len(set(synthesize_words.OTHER_WORDS)) == len(synthesize_words.OTHER_WORDS)


def test_trim_and_place_keep_the_word_inside_one_second():
    rng = np.random.default_rng(0)
    word = np.concatenate([np.zeros(3000), np.sin(np.arange(4000) * 0.3), np.zeros(5000)]).astype(np.float32)
    trimmed = synthesize_words.trim(word)
    assert 3900 <= trimmed.size <= 4200
    clip = synthesize_words.place(trimmed, rng)
    assert clip.size == 16000 and 0.1 <= np.abs(clip).max() <= 0.9
    assert np.count_nonzero(clip) >= 3800


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_script_writes_one_second_clips_in_word_folders(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "synthesize_words.py"), "--out", str(tmp_path),
                          "--per-command", "1", "--per-other", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    clips = word_clips(tmp_path)
    assert sorted(label for _, label in clips) == sorted(COMMANDS)
    for rel, _ in clips:
        samples, rate = sf.read(tmp_path / rel, dtype="float32")
        assert rate == 16000 and samples.shape == (16000,)
        assert 0.09 <= np.abs(samples).max() <= 0.91

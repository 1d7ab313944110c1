import numpy as np
import pytest
import soundfile as sf

from audio.io import AudioReadError, find_audio_files, iter_audio_blocks, read_audio
from conftest import CLIPS_DIR, DATA_DIR, read_clip


def test_reads_16k_clip_unchanged():
    samples = read_audio(CLIPS_DIR / "yes.wav", 16000)
    np.testing.assert_array_equal(samples, read_clip("yes"))


def test_44k_stereo_is_mixed_and_resampled():
    samples = read_audio(DATA_DIR / "formats" / "stop_44k_stereo.wav", 16000)
    original = read_clip("stop")
    assert abs(samples.size - original.size) <= 2
    n = min(samples.size, original.size)
    assert np.corrcoef(samples[:n], original[:n])[0, 1] > 0.98


def test_8k_clip_is_upsampled():
    samples = read_audio(DATA_DIR / "formats" / "yes_8k.wav", 16000)
    assert abs(samples.size - 16000) <= 2
    assert samples.dtype == np.float32


def test_errors_name_the_file_and_cause(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    silent_header = tmp_path / "no_samples.wav"
    sf.write(silent_header, np.zeros(0, np.float32), 16000)
    for path, cause in ((tmp_path / "missing.wav", "not found"), (empty, ""), (text, ""),
                        (silent_header, "no audio samples"), (tmp_path, "folder")):
        with pytest.raises(AudioReadError) as info:
            read_audio(path, 16000)
        message = str(info.value)
        assert str(path) in message and cause in message and "\n" not in message


def test_blocks_equal_whole_file():
    whole = read_audio(CLIPS_DIR / "left.wav", 16000)
    blocks = list(iter_audio_blocks(CLIPS_DIR / "left.wav", 16000, block_ms=130))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_blocks_resample_in_stream():
    blocks = np.concatenate(list(iter_audio_blocks(DATA_DIR / "formats" / "stop_44k_stereo.wav", 16000, 100)))
    whole = read_audio(DATA_DIR / "formats" / "stop_44k_stereo.wav", 16000)
    assert abs(blocks.size - whole.size) <= 2
    n = min(blocks.size, whole.size)
    assert np.corrcoef(blocks[:n], whole[:n])[0, 1] > 0.999


def test_find_audio_files_recurses(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.txt"):
        (tmp_path / name).write_bytes(b"")
    found = find_audio_files([tmp_path])
    assert [p.name for p in found] == ["y.FLAC", "z.ogg", "x.wav"]

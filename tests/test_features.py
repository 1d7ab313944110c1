import numpy as np
import pytest
import torch

from audio.config import FrontendConfig
from audio.features import LogMel, StreamingLogMel
from conftest import read_clip

CFG = FrontendConfig()


def test_frame_count_is_center_false():
    assert CFG.window_samples == 400 and CFG.hop_samples == 160
    assert LogMel(CFG)(np.zeros(16000, np.float32)).shape == (CFG.n_frames(16000), CFG.n_mels) == (98, 40)
    assert LogMel(CFG)(np.zeros(399, np.float32)).shape == (0, 40)


def test_matches_librosa_reference():
    """An independent implementation of the same definition (HTK mel, no norm, power 2, hann, center=False)."""
    librosa = pytest.importorskip("librosa")
    samples = read_clip("yes")
    ours = LogMel(CFG)(samples).numpy()
    # librosa centres the 400-sample window inside each 512-sample frame; padding by that offset lines
    # its frames up with ours (a shift inside the FFT buffer leaves the power spectrum unchanged).
    offset = (CFG.n_fft - CFG.window_samples) // 2
    mel = librosa.feature.melspectrogram(
        y=np.pad(samples, (offset, offset)), sr=CFG.sample_rate_hz, n_fft=CFG.n_fft, win_length=CFG.window_samples,
        hop_length=CFG.hop_samples, center=False, power=2.0, n_mels=CFG.n_mels, fmin=CFG.f_min_hz,
        fmax=CFG.f_max_hz, htk=True, norm=None, window="hann")
    reference = np.log(mel.T + CFG.log_floor)
    assert ours.shape == reference.shape
    # Loud bins agree closely; float32 vs float64 rounding only shows in near-silent bins.
    loud = reference > np.log(1e-3)
    np.testing.assert_allclose(ours[loud], reference[loud], atol=2e-3)


@pytest.mark.parametrize("chunk_samples", [1, 7, 160, 161, 1000])
def test_streaming_equals_offline(chunk_samples):
    samples = read_clip("stop")
    offline = LogMel(CFG)(samples)
    stream = StreamingLogMel(CFG)
    parts = [stream.process(samples[i:i + chunk_samples]) for i in range(0, samples.size, chunk_samples)]
    streamed = torch.cat(parts)
    assert streamed.shape == offline.shape
    torch.testing.assert_close(streamed, offline, atol=1e-4, rtol=1e-5)


def test_streaming_reset_forgets_pending_samples():
    samples = read_clip("go")
    stream = StreamingLogMel(CFG)
    stream.process(samples[:1234])
    stream.reset()
    torch.testing.assert_close(stream.process(samples), LogMel(CFG)(samples), atol=1e-4, rtol=1e-5)

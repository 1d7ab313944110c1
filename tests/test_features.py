import numpy as np
import pytest
import torch

from audio.config import FrontendConfig
from audio.features import LogMel, StreamingLogMel
from conftest import DATA_DIR, read_clip

CFG = FrontendConfig.legacy_v4()


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


IMAGES = FrontendConfig.speech_commands_images()
PAIRS_DIR = DATA_DIR / "logmel_pairs"


def _pairs():
    from audio.io import read_audio
    from model.data import fit_length
    from model.feature_data import read_image
    for wav in sorted(PAIRS_DIR.glob("*.wav")):
        yield fit_length(read_audio(wav, 16000), 16000), read_image(wav.with_suffix(".jpg"), IMAGES).astype(np.float32)


def test_image_frontend_turns_a_wav_into_its_published_image():
    """The calibrated mapping (tests/data/README.md): wav -> the image's pixels, median r >= 0.99 and
    the mean offset within 2 pixels, through the offline torch, streaming torch and numpy frontends."""
    from audio.mel import NumpyLogMel
    pairs = list(_pairs())
    assert len(pairs) == 8
    torch_streaming = StreamingLogMel(IMAGES)
    for name, frontend in (("torch", lambda s: LogMel(IMAGES)(s).numpy()), ("numpy", NumpyLogMel(IMAGES)),
                           ("numpy streaming", _streamed),
                           ("torch streaming", lambda s: torch.cat([torch_streaming.process(s[i:i + 777])
                                                                    for i in range(0, s.size, 777)]).numpy())):
        r, offset = [], []
        for samples, pixels in pairs:
            torch_streaming.reset()
            feats = frontend(samples)
            assert feats.shape == pixels.shape == (98, 40), name
            r.append(np.corrcoef(feats.ravel(), pixels.ravel())[0, 1])
            offset.append(float((pixels - feats).mean()))
        assert np.median(r) >= 0.99, (name, r)
        assert abs(np.mean(offset)) <= 2.0, (name, offset)
    # The v4 frontend (25 ms, 20-7600 Hz, natural log) is a different thing: it does not match.
    samples, pixels = pairs[0]
    v4 = LogMel(FrontendConfig.legacy_v4())(samples).numpy()
    assert abs(float((pixels - v4).mean())) > 50


def _streamed(samples):
    from audio.mel import NumpyStreamingLogMel
    stream = NumpyStreamingLogMel(IMAGES)
    return np.concatenate([stream.process(samples[i:i + 1234]) for i in range(0, samples.size, 1234)])


def test_image_frontend_floors_silence_and_band_ends_at_4_khz():
    feats = LogMel(IMAGES)(np.zeros(16000, np.float32)).numpy()
    assert np.allclose(feats, IMAGES.silence_feature) and IMAGES.silence_feature >= IMAGES.feature_floor
    # A 6 kHz tone lies above the top band: it reads as silence; a 1 kHz tone does not.
    t = np.arange(16000) / 16000
    high = LogMel(IMAGES)(0.5 * np.sin(2 * np.pi * 6000 * t).astype(np.float32)).numpy()
    low = LogMel(IMAGES)(0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)).numpy()
    assert high.max() < IMAGES.silence_feature + 1 and low.max() > 150


@pytest.mark.parametrize("frontend", [FrontendConfig.legacy_v4(), IMAGES], ids=["v4", "images"])
def test_torch_filters_from_torchaudio_equal_the_numpy_filters(frontend):
    from audio.features import mel_filterbank
    from audio.mel import mel_weights
    np.testing.assert_allclose(mel_filterbank(frontend).numpy(), mel_weights(frontend), atol=1e-5)


def test_the_default_frontend_is_the_shipped_one_and_old_models_keep_theirs():
    """FrontendConfig() is what the shipped model uses; a v4-era config.json (fewer fields) reads as v4's."""
    from conftest import DATA_DIR
    from model.model_config import default_model_dir, read_model_spec
    assert read_model_spec(default_model_dir()).frontend == FrontendConfig()
    assert read_model_spec(DATA_DIR / "model_v4").frontend == FrontendConfig.legacy_v4()
    assert FrontendConfig.legacy_v4() != FrontendConfig()

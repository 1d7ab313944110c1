"""Feature-domain augmentation (audio/augment.py) against what the same change does to the audio."""
import numpy as np
import pytest
import torch

from audio import augment
from audio.augment import AugmentConfig
from audio.config import FrontendConfig
from audio.features import LogMel
from conftest import DATA_DIR, read_clip

IMAGES = FrontendConfig.speech_commands_images()


def _feats(samples) -> torch.Tensor:
    return LogMel(IMAGES)(torch.as_tensor(samples, dtype=torch.float32))


def _loud(feats: torch.Tensor) -> torch.Tensor:
    return feats > IMAGES.silence_feature + 40


def test_power_round_trip_and_floor():
    feats = _feats(np.stack([read_clip("yes"), np.zeros(16000, np.float32)]))
    back = augment.from_power(augment.to_power(feats, IMAGES), IMAGES)
    torch.testing.assert_close(back, feats, atol=1e-3, rtol=0)
    assert back.min() >= IMAGES.feature_floor


def test_gain_offset_equals_scaling_the_audio():
    samples = read_clip("stop")
    louder = _feats(2.0 * samples)[None]
    shifted = augment.apply_gain(_feats(samples)[None], torch.tensor([20 * np.log10(2.0)], dtype=torch.float32), IMAGES)
    loud = _loud(louder)
    torch.testing.assert_close(shifted[loud], louder[loud], atol=0.05, rtol=0)
    quieter = augment.apply_gain(_feats(np.zeros(16000, np.float32))[None], torch.tensor([-40.0]), IMAGES)
    assert quieter.min() >= IMAGES.feature_floor   # re-floored


def test_time_shift_equals_shifting_the_audio():
    samples = read_clip("left")
    gen = torch.Generator().manual_seed(3)
    feats = _feats(samples)[None]
    shifted = augment.time_shift(feats, 10, IMAGES.silence_feature, gen)
    # Find the shift it drew, then compare with the audio moved by as many hops (interior frames).
    k = next(k for k in range(-10, 11) if torch.allclose(shifted[0, 15:80], feats[0, 15 - k:80 - k]))
    moved = np.roll(samples, k * IMAGES.hop_samples)
    if k > 0:
        moved[:k * IMAGES.hop_samples] = 0
    elif k < 0:
        moved[k * IMAGES.hop_samples:] = 0
    reference = _feats(moved)
    torch.testing.assert_close(shifted[0, 12:85], reference[12:85], atol=0.05, rtol=0)


def test_noise_as_band_power_matches_noise_added_to_the_audio():
    import soundfile as sf
    samples = read_clip("go")
    noise, _ = sf.read(DATA_DIR / "noise_running_tap.wav", dtype="float32")
    # 10 dB SNR in the frontend's band (0-4 kHz), the SNR mix_noise sets.
    band_power = lambda x: float(augment.to_power(_feats(x), IMAGES).sum(-1).mean())
    noise = noise[:16000] * np.sqrt(band_power(samples) / band_power(noise[:16000]) / 10.0)
    in_audio = _feats(samples + noise)
    gen = torch.Generator().manual_seed(0)
    in_features = augment.mix_noise(_feats(samples)[None], augment.to_power(_feats(noise), IMAGES)[None],
                                    prob=1.0, snr_db_min=10.0, snr_db_max=10.0, cfg=IMAGES, gen=gen)[0]
    # Power adds up on average, not frame by frame (the cross terms): close, not equal.
    assert float((in_features - in_audio).abs().median()) < 2.0
    assert np.corrcoef(in_features.ravel(), in_audio.ravel())[0, 1] > 0.98
    clean = _feats(samples)
    assert float((clean - in_audio).abs().median()) > 4 * float((in_features - in_audio).abs().median())


def test_every_augmentation_keeps_shape_floor_and_repeats_with_its_seed():
    from model.batches import BatchMaker
    from model.feature_data import FeatureSet, NoiseBank
    feats = np.stack([_feats(read_clip(w)).numpy() for w in ("yes", "no", "up", "down")]).astype(np.float16)
    train = FeatureSet(feats, np.array([0, 1, 2, 3]), np.array([True, False, True, False]), list("abcd"))
    noise = NoiseBank([[augment.to_power(_feats(read_clip("house")), IMAGES)], []], IMAGES)

    def batch(seed):
        maker = BatchMaker(train, noise, IMAGES, AugmentConfig(reverb_prob=1.0), 4, 0.5, 0.0, 1, seed,
                           fill=torch.full((40,), 60.0))
        return next(maker.epoch_batches())

    first, again, other = batch(5), batch(5), batch(6)
    assert first[0].shape == (4, 98, 40) and first[1].shape == (4, 1)
    assert first[0].min() >= IMAGES.feature_floor
    torch.testing.assert_close(first[0], again[0])
    assert not torch.equal(first[0], other[0])


def test_stretch_and_warp_at_factor_one_change_nothing_and_a_warp_moves_energy_down():
    feats = _feats(read_clip("yes"))[None]
    gen = torch.Generator().manual_seed(0)
    same = augment.stretch_and_warp(feats, (1.0, 1.0), (1.0, 1.0), IMAGES.silence_feature, gen)
    torch.testing.assert_close(same, feats, atol=1e-3, rtol=0)
    warped = augment.stretch_and_warp(feats, (1.0, 1.0), (1.2, 1.2), IMAGES.silence_feature, gen)
    centroid = lambda f: float((augment.to_power(f, IMAGES).sum(1) * torch.arange(40)).sum() / augment.to_power(f, IMAGES).sum())
    assert centroid(warped) < centroid(feats) - 1
    faster = augment.stretch_and_warp(feats, (1.3, 1.3), (1.0, 1.0), IMAGES.silence_feature, gen)
    loud_frames = lambda f: int((augment.to_power(f, IMAGES).sum(-1) > augment.to_power(f, IMAGES).sum(-1).max() / 100).sum())
    assert loud_frames(faster) < loud_frames(feats)


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_share_out_exactly_the_batches_of_one_process(world_size):
    from model.batches import BatchMaker
    from model.feature_data import FeatureSet, NoiseBank
    n = 40
    train = FeatureSet(np.full((n, 98, 40), 80, np.float16), np.arange(n) % 11, np.ones(n, bool), [""] * n)
    noise = NoiseBank([[torch.ones(98, 40)], []], IMAGES)
    quiet = AugmentConfig(noise_prob=0.0, reverb_prob=0.0)

    def labels(rank, world):
        maker = BatchMaker(train, noise, IMAGES, quiet, 8, 0.25, 0.0, 1, 0, torch.zeros(40), rank, world)
        return [b[1].flatten().tolist() for b in maker.epoch_batches()]

    single = labels(0, 1)
    shards = [labels(r, world_size) for r in range(world_size)]
    assert len(single) == (n + 10) // 8
    for step, whole in enumerate(single):
        assert sum((shard[step] for shard in shards), []) == whole

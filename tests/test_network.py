import json
import math

import pytest
import torch

from audio.config import FrontendConfig
from model.checkpoint import ModelLoadError, load_checkpoint, save_checkpoint
from model.detector import DetectorConfig
from model.labels import LABELS
from model.network import NetworkConfig, RecurrentClassifier


def _network(cell: str, conv_channels: int, input_norm: str = "fixed") -> RecurrentClassifier:
    torch.manual_seed(0)
    net = RecurrentClassifier(NetworkConfig(cell=cell, conv_channels=conv_channels, hidden_size=32, n_layers=2,
                                            input_norm=input_norm))
    with torch.no_grad():
        net.feature_mean.normal_()
        net.feature_std.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("conv_channels,input_norm", [(0, "fixed"), (16, "fixed"), (16, "pcen")])
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_step_by_step_equals_full_sequence(cell, conv_channels, input_norm):
    net = _network(cell, conv_channels, input_norm)
    frames = torch.randn(2, 37, 40) - 8.0   # log-mel of a quiet signal
    with torch.no_grad():
        full, full_state = net(frames)
        state, steps = None, []
        for t in range(frames.shape[1]):
            logits, state = net(frames[:, t:t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    for key in full_state:
        torch.testing.assert_close(state[key], full_state[key], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("feature_scale,feature_offset", [(1.0, 0.0), (9.98, 146.37)])   # v4's ln, the images' pixels
def test_pcen_features_barely_move_with_the_input_level(feature_scale, feature_offset):
    """20 dB louder input (the fixed normalisation passes the offset on): once PCEN's smoother has
    adapted (~1 s) its features barely move, on either frontend's scale."""
    torch.manual_seed(0)
    net = RecurrentClassifier(NetworkConfig(hidden_size=32, input_norm="pcen", pcen_feature_scale=feature_scale,
                                            pcen_feature_offset=feature_offset)).eval()
    ln_power = torch.randn(1, 300, 40) * 0.5 - 8.0
    frames = feature_scale * ln_power + feature_offset
    louder = feature_scale * (ln_power + math.log(100.0)) + feature_offset
    with torch.no_grad():
        quiet_features, _ = net.pcen(frames)
        loud_features, _ = net.pcen(louder)
    late = slice(100, None)
    shift = (loud_features[:, late] - quiet_features[:, late]).abs().mean()
    assert shift < 0.1 * quiet_features[:, late].abs().mean()


def test_pcen_smoother_in_closed_form_is_the_recursion():
    from model.network import PCEN_SMOOTHING, _smooth
    torch.manual_seed(0)
    energy = torch.exp(torch.randn(2, 300, 40) * 3 + 10)    # crosses two block boundaries
    last = torch.rand(2, 40) * 1e5
    expected, m = [], last
    for t in range(energy.shape[1]):
        m = (1 - PCEN_SMOOTHING) * m + PCEN_SMOOTHING * energy[:, t]
        expected.append(m)
    smoothed, final = _smooth(energy, last)
    torch.testing.assert_close(smoothed, torch.stack(expected, 1), rtol=1e-5, atol=0)
    torch.testing.assert_close(final, m, rtol=1e-5, atol=0)


def test_convolution_is_the_causal_conv1d_it_stores():
    """The forward pass computes the convolution as a matrix product; it must mean exactly what the
    stored nn.Conv1d weights mean (zero history before the first frame), or old checkpoints break."""
    import torch.nn.functional as F
    net = _network("gru", 16)
    frames = torch.randn(2, 30, 40)
    with torch.no_grad():
        x = (frames - net.feature_mean) / net.feature_std
        x = torch.cat([torch.zeros(2, net.cfg.conv_kernel_frames - 1, 40), x], dim=1)
        x = F.gelu(net.conv_norm(net.conv(x.transpose(1, 2)).transpose(1, 2)))
        expected = net.head(net.rnn(x)[0])
        logits, _ = net(frames)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_uneven_chunks_equal_full_sequence(cell):
    net = _network(cell, 16)
    frames = torch.randn(1, 50, 40)
    with torch.no_grad():
        full, _ = net(frames)
        state, parts, start = None, [], 0
        for size in (1, 3, 2, 17, 27):
            logits, state = net(frames[:, start:start + size], state)
            parts.append(logits)
            start += size
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-4)


def test_batched_equals_per_item():
    net = _network("gru", 16)
    frames = torch.randn(3, 20, 40)
    with torch.no_grad():
        batched, _ = net(frames)
        single = torch.cat([net(frames[i:i + 1])[0] for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_state_carries_memory():
    """The hidden state is the network's memory: a different past changes the present output."""
    net = _network("gru", 0)
    frames = torch.randn(1, 10, 40)
    with torch.no_grad():
        _, past_state = net(torch.randn(1, 30, 40) * 3)
        fresh, _ = net(frames)
        with_past, _ = net(frames, past_state)
    assert not torch.allclose(fresh, with_past, atol=1e-3)


def test_unknown_cell_is_rejected():
    with pytest.raises(ValueError, match="cell"):
        RecurrentClassifier(NetworkConfig(cell="transformer"))


def test_checkpoint_round_trip(tmp_path):
    net = _network("lstm", 16)
    frontend = FrontendConfig(n_mels=40, hop_ms=10.0)
    detector = DetectorConfig(threshold=0.42)
    save_checkpoint(tmp_path / "m", net, LABELS, frontend, detector, {"metrics": {"validation": {"accuracy": 0.5}}})
    loaded = load_checkpoint(tmp_path / "m")
    assert loaded.labels == LABELS and loaded.frontend == frontend and loaded.detector == detector
    assert loaded.network.cfg == net.cfg and loaded.extra["metrics"]["validation"]["accuracy"] == 0.5
    frames = torch.randn(1, 12, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(frames)[0], net(frames)[0])


def test_broken_checkpoints_give_clear_errors(tmp_path):
    save_checkpoint(tmp_path / "m", _network("gru", 0), LABELS, FrontendConfig.legacy_v4(), DetectorConfig())
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a valid model config"):
        load_checkpoint(tmp_path / "m")
    config = {"labels": list(LABELS), "frontend": {"sample_rate_hz": 16000, "bogus": 1}, "network": {}}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="bogus"):
        load_checkpoint(tmp_path / "m")
    weights.unlink()
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        load_checkpoint(tmp_path / "m")

"""The numpy forward pass (what the streaming recognizer steps) must equal the PyTorch network."""
import numpy as np
import pytest
import torch

from audio.config import FrontendConfig
from audio.features import LogMel
from conftest import make_stream
from model.model_config import NetworkConfig
from model.network import RecurrentClassifier
from model.numpy_network import NumpyNetwork
from model.streaming import StreamingRecognizer


@pytest.fixture(scope="module")
def speech():
    return make_stream([("yes", 0.2), ("off", 1.4)], total_s=2.6, noise_level=0.05)


def _random_network(**overrides) -> RecurrentClassifier:
    torch.manual_seed(3)
    net = RecurrentClassifier(NetworkConfig(**{"hidden_size": 32, "conv_channels": 16, **overrides})).eval()
    with torch.no_grad():   # trained-looking values, not the zero/one defaults the two could share by luck
        net.feature_mean.normal_(-8.0, 1.0)
        net.feature_std.uniform_(1.0, 3.0)
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def _chunked(engine: NumpyNetwork, frames: np.ndarray, sizes=(1, 7, 10, 33)):
    state, logits, hidden, i, k = engine.initial_state(), [], [], 0, 0
    while i < frames.shape[0]:
        out, state, top = engine.forward(frames[i:i + sizes[k % len(sizes)]], state)
        logits.append(out)
        hidden.append(top)
        i += sizes[k % len(sizes)]
        k += 1
    return np.concatenate(logits), np.concatenate(hidden), state


@pytest.mark.parametrize("overrides", [
    {},                                                    # the shipped layout: fixed norm, conv, 2 layers
    {"input_norm": "pcen"},
    {"conv_channels": 0, "n_layers": 1},
    {"input_norm": "pcen", "n_layers": 3, "conv_channels": 8},
])
def test_numpy_forward_equals_torch_in_any_chunks(overrides, speech):
    net = _random_network(**overrides)
    frames = LogMel(FrontendConfig())(torch.from_numpy(speech))
    with torch.inference_mode():
        reference, state, top = net(frames[None], return_hidden=True)
    logits, hidden, numpy_state = _chunked(NumpyNetwork.from_torch(net), frames.numpy())
    np.testing.assert_allclose(logits, reference[0].numpy(), atol=2e-4)
    np.testing.assert_allclose(hidden, top[0].numpy(), atol=2e-4)
    np.testing.assert_allclose(numpy_state["h"], state["h"][:, 0].numpy(), atol=2e-4)


def test_shipped_model_reads_the_same_either_way(model, speech):
    """Same smoothed posteriors and the same events from both engines on real speech."""
    outputs = {}
    for engine in ("numpy", "torch"):
        recognizer = StreamingRecognizer(model, engine=engine)
        updates = [recognizer.process(speech[i:i + 1600]) for i in range(0, speech.size, 1600)]
        outputs[engine] = (np.concatenate([u.posteriors for u in updates]),
                           np.concatenate([u.hidden for u in updates]),
                           [(e.time_s, e.label) for u in updates for e in u.events])
    assert outputs["numpy"][2] == outputs["torch"][2] and len(outputs["numpy"][2]) >= 1
    np.testing.assert_allclose(outputs["numpy"][0], outputs["torch"][0], atol=1e-4)
    np.testing.assert_allclose(outputs["numpy"][1], outputs["torch"][1], atol=1e-4)


def test_other_cells_step_in_torch():
    net = _random_network(cell="lstm")
    assert NumpyNetwork.from_torch(net) is None
    with pytest.raises(ValueError, match="GRU"):
        StreamingRecognizer(_loaded(net), engine="numpy")
    recognizer = StreamingRecognizer(_loaded(net))          # "auto" falls back to torch
    assert recognizer.numpy_network is None
    assert recognizer.process(np.zeros(1600, np.float32)).posteriors.shape == (FrontendConfig().n_frames(1600), 12)


def _loaded(net):
    from model.checkpoint import LoadedModel
    from model.detector import DetectorConfig
    from model.labels import LABELS
    return LoadedModel(net, LABELS, FrontendConfig(), DetectorConfig(), {})

"""The numpy forward pass (what the streaming recognizer steps) must equal the PyTorch network."""
import json
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

from audio.config import FrontendConfig
from audio.features import LogMel
from conftest import REPO_ROOT, make_stream
from model.checkpoint import default_model_dir, load_checkpoint
from model.model_config import ModelLoadError, NetworkConfig
from model.network import RecurrentClassifier
from model.numpy_network import NumpyNetwork, load_numpy_model
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
    {"input_norm": "pcen", "pcen_feature_scale": 9.98, "pcen_feature_offset": 146.37},   # on the image frontend
    {"extra_top_units": 8},                                # a personal model: a wider top layer of its own
    {"extra_top_units": 5, "n_layers": 1, "conv_channels": 0},
    {"extra_top_units": 8, "n_labels": 15, "unknown_words": 3, "unknown_index": 10},   # ... with new words
])
def test_numpy_forward_equals_torch_in_any_chunks(overrides, speech):
    net = _random_network(**overrides)
    frontend = FrontendConfig() if "pcen_feature_scale" in overrides else FrontendConfig.legacy_v4()
    frames = LogMel(frontend)(torch.from_numpy(speech))
    with torch.inference_mode():
        reference, state, top = net(frames[None], return_hidden=True)
    logits, hidden, numpy_state = _chunked(NumpyNetwork.from_torch(net), frames.numpy())
    np.testing.assert_allclose(logits, reference[0].numpy(), atol=2e-4)
    np.testing.assert_allclose(hidden, top[0].numpy(), atol=2e-4)
    for key in state.keys() & {"h", "h_top"}:
        np.testing.assert_allclose(numpy_state[key], state[key][:, 0].numpy().reshape(numpy_state[key].shape), atol=2e-4)
    assert hidden.shape[1] == net.cfg.top_size


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
    assert recognizer.process(np.zeros(1600, np.float32)).posteriors.shape == (FrontendConfig.legacy_v4().n_frames(1600), 12)


def _loaded(net):
    from model.checkpoint import LoadedModel
    from model.detector import DetectorConfig
    from model.labels import LABELS
    return LoadedModel(net, LABELS, FrontendConfig.legacy_v4(), DetectorConfig(), {})


def test_numpy_model_loads_without_torch_and_detects_like_the_checkpoint(speech):
    """In a fresh process: the shipped model's weights read straight into numpy, torch never
    imported, and the events are those the torch checkpoint's recognizer reports here."""
    code = ("import json, sys, numpy as np\n"
            "from model.model_config import default_model_dir\n"
            "from model.streaming import StreamingRecognizer, load_streaming_model\n"
            "r = StreamingRecognizer(load_streaming_model(default_model_dir()))\n"
            "x = np.load(sys.argv[1])\n"
            "ev = [(e.time_s, e.label) for i in range(0, x.size, 1600) for e in r.process(x[i:i + 1600]).events]\n"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'events': ev}))\n")
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", speech)
        out = subprocess.run([sys.executable, "-c", code, f"{tmp}/x.npy"], capture_output=True, text=True,
                             cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["torch"] is False
    reference = StreamingRecognizer(load_checkpoint(default_model_dir()), engine="torch")
    expected = [[e.time_s, e.label] for i in range(0, speech.size, 1600) for e in reference.process(speech[i:i + 1600]).events]
    assert result["events"] == expected and expected


def test_damaged_or_mismatched_weights_are_clear_load_errors(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(default_model_dir(), folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="model.safetensors could not be loaded"):
        load_numpy_model(folder)
    shutil.copy(default_model_dir() / "model.safetensors", folder / "model.safetensors")
    config = (folder / "config.json").read_text().replace('"hidden_size": 128', '"hidden_size": 96')
    (folder / "config.json").write_text(config)
    with pytest.raises(ModelLoadError, match="do not fit the network config"):
        load_numpy_model(folder)

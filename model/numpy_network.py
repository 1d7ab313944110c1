"""The trained GRU network's forward pass in numpy, for the streaming recognizer's small blocks.

Why a second implementation: a 100 ms block is 10 frames, and at that size the work is dominated by
per-operation overhead, not arithmetic. PyTorch's GRU runs ~60 dispatched operations per frame and
layer; this file does the same maths in ~11 numpy calls per frame and layer: the whole recognizer at
100 ms blocks costs about half as much (docs/PERFORMANCE.md). Training, evaluation and
the batched paths keep using `model/network.py`; tests/test_numpy_network.py holds the two to the
same outputs.

It needs no torch: `load_numpy_model` reads the weights with safetensors' numpy loader, so the live
app and `detect` never import torch (2-3 s and ~600 MB on this machine) for a GRU model.
Only the GRU cell is supported (the shipped model's); for others `NumpyNetwork.from_torch` returns
None and `load_numpy_model` raises, and the callers step the torch network instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import erf

from model.model_config import (PCEN_BLOCK_FRAMES, PCEN_EPS, PCEN_LOG_SCALE, PCEN_SMOOTHING, WEIGHTS_FILE,
                                LoadedModel, ModelLoadError, NetworkConfig, read_model_spec)


def expected_shapes(cfg: NetworkConfig) -> dict[str, tuple[int, ...]]:
    """The weights a GRU RecurrentClassifier with this config stores, by state-dict name."""
    shapes = {"feature_mean": (cfg.n_mels,), "feature_std": (cfg.n_mels,),
              "head.weight": (cfg.n_labels - cfg.unknown_words, cfg.top_size),
              "head.bias": (cfg.n_labels - cfg.unknown_words,)}
    if cfg.unknown_words:
        shapes.update({"word_head.weight": (cfg.unknown_words + 1, cfg.top_size),
                       "word_head.bias": (cfg.unknown_words + 1,)})
    if cfg.input_norm == "pcen":
        shapes.update({f"pcen_log_{n}": (cfg.n_mels,) for n in ("alpha", "delta", "r")})
    rnn_input = cfg.n_mels
    if cfg.conv_channels:
        shapes.update({"conv.weight": (cfg.conv_channels, cfg.n_mels, cfg.conv_kernel_frames),
                       "conv.bias": (cfg.conv_channels,), "conv_norm.weight": (cfg.conv_channels,),
                       "conv_norm.bias": (cfg.conv_channels,)})
        rnn_input = cfg.conv_channels
    for name, layer, n_in, n_hidden in _layers(cfg, rnn_input):
        shapes.update({f"{name}.weight_ih_l{layer}": (3 * n_hidden, n_in), f"{name}.weight_hh_l{layer}": (3 * n_hidden, n_hidden),
                       f"{name}.bias_ih_l{layer}": (3 * n_hidden,), f"{name}.bias_hh_l{layer}": (3 * n_hidden,)})
    return shapes


def _layers(cfg: NetworkConfig, rnn_input: int) -> list[tuple[str, int, int, int]]:
    """(state-dict prefix, layer index, input width, hidden width) of each recurrent layer, bottom up:
    `rnn` layers, and with extra units a wider top layer stored as `top`."""
    n_uniform = cfg.uniform_layers
    layers = [("rnn", i, rnn_input if i == 0 else cfg.hidden_size, cfg.hidden_size) for i in range(n_uniform)]
    if cfg.extra_top_units:
        layers.append(("top", 0, cfg.hidden_size if n_uniform else rnn_input, cfg.top_size))
    return layers


class NumpyNetwork:
    """frames [T, mel] + state -> (logits [T, C], new state, top-layer output [T, top_size]), batch of one."""

    LAYER_NORM_EPS = 1e-5   # nn.LayerNorm's default, which network.py uses

    def __init__(self, cfg: NetworkConfig, weights: dict[str, np.ndarray]):
        """`weights`: the torch network's state dict as numpy arrays. Raises ValueError if they do not
        fit `cfg` (missing, unexpected or misshapen)."""
        if cfg.cell != "gru":
            raise ValueError(f"the numpy forward pass runs GRU networks only, not {cfg.cell}")
        shapes = expected_shapes(cfg)
        problems = [f"{name} missing" for name in shapes if name not in weights]
        problems += [f"{name} is {tuple(weights[name].shape)}, expected {shape}" for name, shape in shapes.items()
                     if name in weights and tuple(weights[name].shape) != shape]
        problems += [f"unexpected {name}" for name in weights if name not in shapes]
        if problems:
            raise ValueError("weights do not fit the network config: " + "; ".join(problems[:3]))

        def w(name: str) -> np.ndarray:
            return np.asarray(weights[name], np.float32)

        self.cfg = cfg
        self.mean, self.inv_std = w("feature_mean"), 1.0 / w("feature_std")
        self.pcen = cfg.input_norm == "pcen"
        if self.pcen:
            self.alpha, self.delta, self.r = (np.exp(w(f"pcen_log_{n}")) for n in ("alpha", "delta", "r"))
            self.delta_r = self.delta ** self.r
            # Features back to natural-log power (the images' pixel scale, or v4's ln as it is).
            self.pcen_offset = np.float32(cfg.pcen_feature_offset)
            self.pcen_inv_scale = np.float32(1.0 / cfg.pcen_feature_scale)
            decay = np.float32(1.0 - PCEN_SMOOTHING)
            self.decay_powers = (decay ** np.arange(PCEN_BLOCK_FRAMES, dtype=np.float32))[:, None]
        self.has_conv = bool(cfg.conv_channels)
        if self.has_conv:
            self.conv_w = w("conv.weight").reshape(cfg.conv_channels, -1).T.copy()    # [mel * k, channels]
            self.conv_b = w("conv.bias")
            self.norm_w, self.norm_b = w("conv_norm.weight"), w("conv_norm.bias")
        self.layers = []
        for name, layer, _, h in _layers(cfg, cfg.conv_channels or cfg.n_mels):
            w_ih, w_hh = (w(f"{name}.weight_{k}_l{layer}").T.copy() for k in ("ih", "hh"))
            b_ih, b_hh = (w(f"{name}.bias_{k}_l{layer}") for k in ("ih", "hh"))
            # The reset and update gates add both biases; the candidate's hidden bias sits inside r * (...),
            # so it becomes an extra row of the recurrent matrix, met by a constant 1 after the state.
            b_in = b_ih.copy()
            b_in[:2 * h] += b_hh[:2 * h]
            w_hh = np.vstack([w_hh, np.concatenate([np.zeros(2 * h, np.float32), b_hh[2 * h:]])])
            # sigmoid(a) = 0.5 + 0.5 tanh(a / 2): the gates' columns are halved once here, and each step
            # takes numpy's tanh (a tenth of scipy's expit's call cost on 256 values).
            for array in (w_ih, w_hh, b_in):
                array[..., :2 * h] *= 0.5
            self.layers.append((w_ih, b_in, w_hh))
        self.head_w, self.head_b = w("head.weight").T.copy(), w("head.bias")
        if cfg.unknown_words:
            self.word_head_w, self.word_head_b = w("word_head.weight").T.copy(), w("word_head.bias")

    @classmethod
    def from_torch(cls, net) -> "NumpyNetwork | None":
        """From a RecurrentClassifier; None if its cell is not a GRU."""
        if net.cfg.cell != "gru":
            return None
        return cls(net.cfg, {name: value.detach().cpu().numpy() for name, value in net.state_dict().items()})

    def initial_state(self) -> dict[str, np.ndarray]:
        cfg = self.cfg
        # One row per layer; a personal model's wider top layer gets its own entry.
        state = {"h": np.zeros((cfg.uniform_layers, cfg.hidden_size), np.float32)}
        if cfg.extra_top_units:
            state["h_top"] = np.zeros(cfg.top_size, np.float32)
        if self.pcen:
            state["pcen"] = np.zeros(cfg.n_mels, np.float32)
        if self.has_conv:
            state["conv"] = np.zeros((cfg.conv_kernel_frames - 1, cfg.n_mels), np.float32)
        return state

    def forward(self, frames: np.ndarray, state: dict[str, np.ndarray]):
        new_state: dict[str, np.ndarray] = {}
        x = np.asarray(frames, np.float32)
        if self.pcen:
            x, new_state["pcen"] = self._pcen(x, state["pcen"])
        x = (x - self.mean) * self.inv_std
        if self.has_conv:
            k = self.cfg.conv_kernel_frames
            x = np.concatenate([state["conv"], x])
            new_state["conv"] = x[x.shape[0] - (k - 1):]
            rows, cols = x.strides
            # [T, mel, k] windows, laid out as torch's unfold (sliding_window_view costs 4x the call)
            windows = np.lib.stride_tricks.as_strided(x, (x.shape[0] - k + 1, x.shape[1], k), (rows, cols, rows),
                                                      writeable=False)
            x = windows.reshape(windows.shape[0], -1) @ self.conv_w + self.conv_b
            mu = x.mean(1, keepdims=True)
            x = x - mu
            x = x / np.sqrt((x * x).mean(1, keepdims=True) + self.LAYER_NORM_EPS) * self.norm_w + self.norm_b
            x = 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))             # exact GELU, as F.gelu
        hidden = np.empty_like(state["h"])
        for layer, (w_ih, b_in, w_hh) in enumerate(self.layers):
            if layer < len(hidden):
                x, hidden[layer] = self._gru_layer(x @ w_ih + b_in, state["h"][layer], w_hh)
            else:   # a personal model's top layer
                x, new_state["h_top"] = self._gru_layer(x @ w_ih + b_in, state["h_top"], w_hh)
        new_state["h"] = hidden
        logits = x @ self.head_w + self.head_b
        if self.cfg.unknown_words:   # as network.split_unknown
            words = x @ self.word_head_w + self.word_head_b
            words -= words.max(1, keepdims=True)
            log_q = words - np.log(np.exp(words).sum(1, keepdims=True))
            u = self.cfg.unknown_index
            unknown = logits[:, u:u + 1].copy()
            logits[:, u:u + 1] += log_q[:, :1]
            logits = np.concatenate([logits, unknown + log_q[:, 1:]], 1)
        return logits, new_state, x

    @staticmethod
    def _gru_layer(gates_in: np.ndarray, h: np.ndarray, w_hh: np.ndarray):
        """One layer over all frames; gates_in [T, 3H] is the input's share of every gate (PyTorch's
        gate order: reset, update, candidate). Eleven numpy calls per frame: at 10 frames a call, call
        overhead, not arithmetic, is what costs."""
        n_hidden = h.shape[0]
        # Row t holds the state after frame t followed by a 1 (for the bias row of w_hh): each row is
        # the next step's input to the matrix product, written in place.
        out = np.ones((gates_in.shape[0] + 1, n_hidden + 1), np.float32)
        out[0, :n_hidden] = h
        for t in range(gates_in.shape[0]):
            h_and_1 = out[t]
            gates_h = h_and_1 @ w_hh
            rz = gates_in[t, :2 * n_hidden] + gates_h[:2 * n_hidden]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            candidate = rz[:n_hidden] * gates_h[2 * n_hidden:]
            candidate += gates_in[t, 2 * n_hidden:]
            np.tanh(candidate, out=candidate)
            keep = h_and_1[:n_hidden] - candidate
            keep *= rz[n_hidden:]
            np.add(candidate, keep, out=out[t + 1, :n_hidden])
        return out[1:, :n_hidden], out[-1, :n_hidden]

    def _pcen(self, frames: np.ndarray, last: np.ndarray):
        """As RecurrentClassifier.pcen, smoother in the same closed form per block."""
        energy = np.exp((frames - self.pcen_offset) * self.pcen_inv_scale + np.float32(PCEN_LOG_SCALE))
        decay = np.float32(1.0 - PCEN_SMOOTHING)
        average = np.empty_like(energy)
        for start in range(0, energy.shape[0], PCEN_BLOCK_FRAMES):
            block = energy[start:start + PCEN_BLOCK_FRAMES]
            powers = self.decay_powers[:block.shape[0]]
            smoothed = powers * (decay * last + np.float32(PCEN_SMOOTHING) * np.cumsum(block / powers, axis=0))
            average[start:start + block.shape[0]] = smoothed
            last = smoothed[-1]
        features = (energy / (np.float32(PCEN_EPS) + average) ** self.alpha + self.delta) ** self.r - self.delta_r
        return features, last


class NumpyModel(LoadedModel):
    """A model folder loaded for streaming without torch: `network` is a NumpyNetwork."""


def load_numpy_model(folder: str | Path) -> NumpyModel:
    """Raises ModelLoadError for a missing/corrupt folder or weights, and for a non-GRU network
    (check `read_model_spec(folder).network.cell` first to fall back to torch)."""
    from safetensors.numpy import load_file
    spec = read_model_spec(folder)
    path = spec.path / WEIGHTS_FILE
    try:
        weights = load_file(str(path))
        network = NumpyNetwork(spec.network, weights)
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise ModelLoadError(f"{path} could not be loaded ({str(exc).splitlines()[0]})") from None
    return NumpyModel(network, spec.labels, spec.frontend, spec.detector, spec.extra, spec.path)

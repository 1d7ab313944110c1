"""A unidirectional recurrent classifier with explicit state.

    frames [B, T, mel] -> normalise -> causal conv (optional) -> GRU | LSTM | RNN -> linear -> logits [B, T, C]

The network keeps no state of its own: `forward(frames, state)` returns the new state, so running a
sequence in one call or frame by frame gives the same logits. That is what the streaming recognizer
relies on: one recurrent step per 10 ms frame, the hidden state carried between calls.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from model.model_config import (PCEN_BLOCK_FRAMES, PCEN_EPS, PCEN_INIT, PCEN_LOG_SCALE, PCEN_SMOOTHING,
                                NetworkConfig)

State = dict[str, torch.Tensor]

_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
_INPUT_NORMS = ("fixed", "pcen")


def _smooth(energy: torch.Tensor, last: torch.Tensor, block_frames: int = PCEN_BLOCK_FRAMES):
    """The first-order smoother m_t = (1 - s) m_{t-1} + s e_t over [B, T, mel], without a Python step
    per frame (that loop cost a third of a streaming call): in closed form per block,
    m_t = d^t (d m_0 + s * cumsum_j<=t e_j d^-j) with d = 1 - s. Blocks keep d^-j within float32."""
    decay = 1.0 - PCEN_SMOOTHING
    out = []
    for start in range(0, energy.shape[1], block_frames):
        block = energy[:, start:start + block_frames]
        powers = decay ** torch.arange(block.shape[1], dtype=energy.dtype, device=energy.device)[:, None]
        smoothed = powers * (decay * last[:, None] + PCEN_SMOOTHING * torch.cumsum(block / powers, dim=1))
        out.append(smoothed)
        last = smoothed[:, -1]
    return (torch.cat(out, 1) if out else energy), last


def split_unknown(logits: torch.Tensor, word_logits: torch.Tensor, unknown_index: int) -> torch.Tensor:
    """[..., C] base logits and [..., K + 1] word logits -> [..., C + K]: `_unknown_`'s logit becomes
    log p(unknown) + log q(other) and word k's log p(unknown) + log q(k), so that after a softmax every
    other label has the base logits' probability and `_unknown_` and the words share what it had."""
    log_q = torch.log_softmax(word_logits, dim=-1)
    unknown = logits[..., unknown_index:unknown_index + 1]
    logits = torch.cat([logits[..., :unknown_index], unknown + log_q[..., :1], logits[..., unknown_index + 1:]], -1)
    return torch.cat([logits, unknown + log_q[..., 1:]], -1)


class RecurrentClassifier(nn.Module):
    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        if cfg.cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, not {cfg.cell!r}")
        if cfg.input_norm not in _INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {_INPUT_NORMS}, not {cfg.input_norm!r}")
        self.cfg = cfg
        if cfg.input_norm == "pcen":
            for name, value in PCEN_INIT.items():   # per mel bin, in the log domain (stay positive)
                setattr(self, f"pcen_log_{name}", nn.Parameter(torch.full((cfg.n_mels,), math.log(value))))
        # Per-mel-bin input normalisation, fitted on training features (a fixed affine map, so causal).
        self.register_buffer("feature_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("feature_std", torch.ones(cfg.n_mels))
        rnn_input = cfg.n_mels
        if cfg.conv_channels:
            self.conv = nn.Conv1d(cfg.n_mels, cfg.conv_channels, cfg.conv_kernel_frames)
            self.conv_norm = nn.LayerNorm(cfg.conv_channels)
            rnn_input = cfg.conv_channels
        else:
            self.conv = None
        if cfg.extra_top_units and cfg.cell != "gru":
            raise ValueError("extra top-layer units (personal models) are built for GRU networks only")
        # With extra units the top layer is its own, wider GRU (`top`); `rnn` holds the layers below it.
        n_uniform = cfg.uniform_layers
        self.rnn = _CELLS[cfg.cell](rnn_input, cfg.hidden_size, num_layers=n_uniform, batch_first=True,
                                    dropout=cfg.dropout if n_uniform > 1 else 0.0) if n_uniform else None
        self.top = nn.GRU(cfg.hidden_size if n_uniform else rnn_input, cfg.top_size, batch_first=True) \
            if cfg.extra_top_units else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.top_size, cfg.n_labels - cfg.unknown_words)
        # New words of a personal model split `_unknown_`'s probability: word_head's softmax over [other
        # speech, word 1..K] divides it, so every other label keeps exactly the head's probability.
        self.word_head = nn.Linear(cfg.top_size, cfg.unknown_words + 1) if cfg.unknown_words else None
        if cfg.cell == "lstm":
            # Forget-gate bias 1 (Jozefowicz et al. 2015): the cell starts out remembering, so the
            # gradient reaches early frames from the first step (with PyTorch's default near-zero
            # bias the LSTM here had barely started learning after 20 epochs, docs/CELLS.md).
            with torch.no_grad():
                for layer in range(cfg.n_layers):
                    getattr(self.rnn, f"bias_ih_l{layer}")[cfg.hidden_size:2 * cfg.hidden_size].fill_(1.0)
                    getattr(self.rnn, f"bias_hh_l{layer}")[cfg.hidden_size:2 * cfg.hidden_size].fill_(0.0)

    def initial_state(self, batch: int) -> State:
        cfg = self.cfg
        device = self.head.weight.device
        state = {}
        if self.rnn is not None:
            state["h"] = torch.zeros(self.rnn.num_layers, batch, cfg.hidden_size, device=device)
        if self.top is not None:
            state["h_top"] = torch.zeros(1, batch, cfg.top_size, device=device)
        if cfg.cell == "lstm":
            state["c"] = torch.zeros_like(state["h"])
        if cfg.input_norm == "pcen":
            state["pcen"] = torch.zeros(batch, cfg.n_mels, device=device)   # the smoothed energy
        if self.conv is not None:
            # The last kernel-1 normalised input frames: the causal convolution's memory.
            state["conv"] = torch.zeros(batch, cfg.conv_kernel_frames - 1, cfg.n_mels, device=device)
        return state

    def forward(self, frames: torch.Tensor, state: State | None = None,
                return_hidden: bool = False):
        """frames [B, T, mel] (log-mel), state from `initial_state` or a previous call (None = zeros).

        Returns (logits [B, T, C], new state), plus the top layer's output [B, T, hidden] when
        `return_hidden` (what the GUI draws as the network's memory).
        """
        if state is None:
            state = self.initial_state(frames.shape[0])
        out, new_state = self.encode(frames, state)
        if self.rnn is not None and self.cfg.cell == "lstm":
            out, (h, c) = self.rnn(out, (state["h"], state["c"]))
            new_state["h"], new_state["c"] = h, c
        elif self.rnn is not None:
            out, new_state["h"] = self.rnn(out, state["h"])
        if self.top is not None:
            out, new_state["h_top"] = self.top(out, state["h_top"])
        logits = self.head(self.dropout(out))
        if self.word_head is not None:
            logits = split_unknown(logits, self.word_head(self.dropout(out)), self.cfg.unknown_index)
        if return_hidden:
            return logits, new_state, out
        return logits, new_state

    def encode(self, frames: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """What comes before the recurrent layers: frames [B, T, mel] -> (the first recurrent layer's
        input [B, T, C], the PCEN and convolution state after these frames)."""
        if state is None:
            state = self.initial_state(frames.shape[0])
        new_state: State = {}
        x = frames
        if self.cfg.input_norm == "pcen":
            x, new_state["pcen"] = self.pcen(frames, state["pcen"])
        x = (x - self.feature_mean) / self.feature_std
        if self.conv is not None:
            k = self.cfg.conv_kernel_frames
            x = torch.cat([state["conv"], x], dim=1)
            new_state["conv"] = x[:, x.shape[1] - (k - 1):]
            # The convolution as one matrix product over [frame, k frames x mel] windows: the same
            # numbers as self.conv, at a third of its cost for the few frames of a streaming block.
            windows = x.unfold(1, k, 1).flatten(2)                      # [B, T, mel * k]
            x = F.linear(windows, self.conv.weight.flatten(1), self.conv.bias)
            x = F.gelu(self.conv_norm(x))
        return x, new_state

    def pcen(self, frames: torch.Tensor, smoothed: torch.Tensor | None = None):
        """log-mel frames [B, T, mel] -> (PCEN features [B, T, mel], last smoothed energy [B, mel]).

        Each bin's energy is divided by a running average of itself (an automatic gain control), then
        compressed: loudness and microphone colour matter less than with a fixed normalisation."""
        cfg = self.cfg
        energy = torch.exp((frames - cfg.pcen_feature_offset) / cfg.pcen_feature_scale + PCEN_LOG_SCALE)
        if smoothed is None:
            smoothed = frames.new_zeros(frames.shape[0], frames.shape[2])
        with torch.no_grad():   # the smoother has no parameters: no gradient to carry through time
            average, smoothed = _smooth(energy, smoothed)
        alpha, delta, r = (torch.exp(getattr(self, f"pcen_log_{n}")) for n in ("alpha", "delta", "r"))
        features = (energy / (PCEN_EPS + average) ** alpha + delta) ** r - delta ** r
        return features, smoothed

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

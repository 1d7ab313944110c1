"""One enrollment training step with personal units: nn.GRU over the whole top layer against the
personal units stepped alone (`_Split.personal_top`). Not a test: timings depend on the machine.

    .venv/bin/python benchmarks/bench_enroll_step.py [--threads 2] [--repeats 8]

Prints the median seconds of a forward and backward pass on a batch of 64 clips x 98 frames (the
shipped model, 32 personal units, ten new words), and the largest difference between the two paths'
logits.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from model.checkpoint import default_model_dir, load_checkpoint
from model.enroll import _Split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_checkpoint(default_model_dir())
    split = _Split(copy.deepcopy(base.network).eval(), len(base.labels) + 10, base.labels.index("_unknown_"), 32,
                   frozen_rows=tuple(range(len(base.labels))))
    torch.manual_seed(0)
    n_frames = base.frontend.n_frames(base.frontend.clip_samples)   # 98 for 1 s
    frames = torch.rand(args.batch, n_frames, base.frontend.n_mels) * 100   # on the pixel scale of the features
    inputs = split.features(frames)
    split.start_new_units_from(inputs)
    with torch.no_grad():
        split.word_head.weight.normal_(0, 0.3)
    base_hidden = split.base_hidden(inputs)
    results = {}
    for name, given in (("nn.GRU, whole layer", None), ("personal units alone", base_hidden)):
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            logits, _ = split(inputs, given)
            logits[:, -1].logsumexp(1).sum().backward()
            seconds.append(time.perf_counter() - started)
        results[name] = logits.detach()
        print(f"{name}: {statistics.median(seconds):.4f} s per step (median of {args.repeats})")
    a, b = results.values()
    print(f"largest logit difference: {(a - b).abs().max().item():.2e}")


if __name__ == "__main__":
    main()

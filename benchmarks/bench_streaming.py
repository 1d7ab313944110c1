"""Cost of the streaming recognizer, measured on this machine (not a test: numbers vary by machine).

    .venv/bin/python benchmarks/bench_streaming.py [--model DIR] [--seconds 60] [--json]

1. Streaming (features + recurrent step + detector, fed in 80 ms blocks as the live app runs it, and
   100 ms, the budget's block) vs
   re-running the same network over a 1 s window every 30 ms (TensorFlow's streaming example). Both
   ways run in both engines (PyTorch, and the numpy forward pass of model/numpy_network.py); the
   ratio is taken against the cheaper re-run, so a fast engine does not flatter streaming alone.
2. Marginal real-time factor on one core for several block sizes (compute seconds per audio second).
3. One 10 ms frame through the network alone, stepped one frame per call vs ten frames per call.
4. `classify` throughput (clips per second, batched 1 s clips).
All on one thread (torch.set_num_threads(1), and one BLAS thread for numpy).
"""
from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"   # before numpy loads OpenBLAS: one core means one core
import argparse
import json
import platform
import time

import numpy as np
import torch

from audio.features import LogMel
from audio.mel import NumpyLogMel
from model.checkpoint import default_model_dir, load_checkpoint
from model.evaluate import final_frame_posteriors
from model.numpy_network import NumpyNetwork
from model.streaming import StreamingRecognizer

ENGINES = ("numpy", "torch")


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_checkpoint(args.model)
    fs = model.frontend.sample_rate_hz
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(args.seconds * fs)) * 0.05).astype(np.float32)
    results: dict = {"machine": platform.processor() or platform.machine(), "threads": 1,
                     "audio_seconds": args.seconds, "parameters": model.network.n_parameters()}

    # 2. streaming at several block sizes, with each engine the recognizer can step
    rtf: dict = {}
    for engine in ENGINES:
        rtf[engine] = {}
        for block_ms in (10, 30, 80, 100, 1000):
            block = int(fs * block_ms / 1000)

            def run():
                recognizer = StreamingRecognizer(model, engine=engine)
                for i in range(0, audio.size, block):
                    recognizer.process(audio[i:i + block])
            rtf[engine][block_ms] = _best_of(run) / args.seconds
    results["streaming_rtf_by_engine_and_block_ms"] = rtf

    # 1. window re-run every 30 ms over the last 1 s (only a few seconds: it is slow), with the same
    # network in each engine; the streaming figures are compared with the cheaper of the two.
    log_mel, numpy_log_mel = LogMel(model.frontend), NumpyLogMel(model.frontend)
    numpy_network = NumpyNetwork.from_torch(model.network)
    window, hop = model.frontend.clip_samples, int(fs * 0.030)
    rerun_audio_s = min(10.0, args.seconds)

    @torch.inference_mode()
    def rerun_torch():
        for end in range(window, int(rerun_audio_s * fs), hop):
            logits, _ = model.network(log_mel(torch.from_numpy(audio[end - window:end]))[None])
            torch.softmax(logits[0, -1], dim=-1)

    def rerun_numpy():
        for end in range(window, int(rerun_audio_s * fs), hop):
            logits, _, _ = numpy_network.forward(numpy_log_mel(audio[end - window:end]), numpy_network.initial_state())
            np.exp(logits[-1] - logits[-1].max())
    rerun = {name: _best_of(fn, 2) / (rerun_audio_s - window / fs)
             for name, fn in (("torch", rerun_torch), ("numpy", rerun_numpy))}
    rerun_s_per_audio_s = min(rerun.values())
    results["window_rerun_rtf_by_engine"] = rerun
    results["window_rerun_rtf"] = rerun_s_per_audio_s
    streaming_s_per_audio_s = min(r[100] for r in rtf.values())
    results["streaming_speedup_vs_rerun"] = rerun_s_per_audio_s / streaming_s_per_audio_s
    results["speedup_vs_rerun_by_engine_and_block_ms"] = {
        engine: {ms: rerun_s_per_audio_s / value for ms, value in by_block.items()} for engine, by_block in rtf.items()}

    # 3. the network alone, per 10 ms frame
    frames = torch.randn(1, 1000, model.frontend.n_mels)
    per_frame: dict = {"torch": {}, "numpy": {}}
    for frames_per_call in (1, 10):
        @torch.inference_mode()
        def step():
            state = None
            for i in range(0, frames.shape[1], frames_per_call):
                _, state = model.network(frames[:, i:i + frames_per_call], state)

        def numpy_step():
            state = numpy_network.initial_state()
            for i in range(0, frames.shape[1], frames_per_call):
                _, state, _ = numpy_network.forward(frames_np[i:i + frames_per_call], state)
        frames_np = frames[0].numpy()
        per_frame["torch"][frames_per_call] = _best_of(step) / frames.shape[1] * 1e6
        per_frame["numpy"][frames_per_call] = _best_of(numpy_step) / frames.shape[1] * 1e6
    results["network_us_per_frame_by_engine_and_frames_per_call"] = per_frame

    # 4. classify throughput on 1 s clips (batched, as `speechcmd classify` does after reading)
    clips = (rng.standard_normal((512, window)) * 0.05).astype(np.float32)
    seconds = _best_of(lambda: final_frame_posteriors(model.network, log_mel, clips, batch_size=64), 2)
    results["classify_clips_per_second"] = len(clips) / seconds

    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"model: {model.network.n_parameters()} parameters, one thread, {args.seconds:.0f} s of audio")
    for name, value in rerun.items():
        print(f"1 s window re-run every 30 ms ({name}): real-time factor {value:.4f}")
    for engine, by_block in rtf.items():
        for block_ms, value in by_block.items():
            print(f"streaming ({engine}), {block_ms:>4} ms blocks: real-time factor {value:.4f} ({value * 1e4:.1f} us "
                  f"per 10 ms of audio), {rerun_s_per_audio_s / value:.1f}x cheaper than the cheaper re-run")
    print(f"streaming (100 ms blocks, best engine) is {results['streaming_speedup_vs_rerun']:.1f}x cheaper than "
          f"the cheaper window re-run")
    for engine, by_call in per_frame.items():
        for n, us in by_call.items():
            print(f"network alone ({engine}), {n:>2} frame(s) per call: {us:.1f} us per frame")
    print(f"classify: {results['classify_clips_per_second']:.0f} clips per second (features + network, batched)")


if __name__ == "__main__":
    main()

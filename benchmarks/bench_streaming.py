"""Cost of the streaming recognizer, measured on this machine (not a test: numbers vary by machine).

    .venv/bin/python benchmarks/bench_streaming.py [--model DIR] [--seconds 60] [--json]

1. Streaming (features + recurrent step + detector, fed in 100 ms blocks as the live app does) vs
   re-running the same network over a 1 s window every 30 ms (TensorFlow's streaming example).
2. Marginal real-time factor on one core for several block sizes (compute seconds per audio second).
3. One 10 ms frame through the network alone, stepped one frame per call vs ten frames per call.
4. `classify` throughput (clips per second, batched 1 s clips).
All on one thread (torch.set_num_threads(1)).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from audio.features import LogMel
from model.checkpoint import default_model_dir, load_checkpoint
from model.evaluate import final_frame_posteriors
from model.streaming import StreamingRecognizer


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

    # 2. streaming at several block sizes
    rtf = {}
    for block_ms in (10, 30, 100, 1000):
        block = int(fs * block_ms / 1000)

        def run():
            recognizer = StreamingRecognizer(model)
            for i in range(0, audio.size, block):
                recognizer.process(audio[i:i + block])
        rtf[block_ms] = _best_of(run) / args.seconds
    results["streaming_rtf_by_block_ms"] = rtf
    streaming_s_per_audio_s = rtf[100]

    # 1. window re-run every 30 ms over the last 1 s (only a few seconds: it is slow)
    log_mel = LogMel(model.frontend)
    window, hop = model.frontend.clip_samples, int(fs * 0.030)
    rerun_audio_s = min(10.0, args.seconds)

    @torch.inference_mode()
    def rerun():
        for end in range(window, int(rerun_audio_s * fs), hop):
            logits, _ = model.network(log_mel(torch.from_numpy(audio[end - window:end]))[None])
            torch.softmax(logits[0, -1], dim=-1)
    rerun_s_per_audio_s = _best_of(rerun, 2) / (rerun_audio_s - window / fs)
    results["window_rerun_rtf"] = rerun_s_per_audio_s
    results["streaming_speedup_vs_rerun"] = rerun_s_per_audio_s / streaming_s_per_audio_s
    results["speedup_vs_rerun_by_block_ms"] = {ms: rerun_s_per_audio_s / value for ms, value in rtf.items()}

    # 3. the network alone, per 10 ms frame
    frames = torch.randn(1, 1000, model.frontend.n_mels)
    per_frame = {}
    for frames_per_call in (1, 10):
        @torch.inference_mode()
        def step():
            state = None
            for i in range(0, frames.shape[1], frames_per_call):
                _, state = model.network(frames[:, i:i + frames_per_call], state)
        per_frame[frames_per_call] = _best_of(step) / frames.shape[1] * 1e6
    results["network_us_per_frame_by_frames_per_call"] = per_frame

    # 4. classify throughput on 1 s clips (batched, as `speechcmd classify` does after reading)
    clips = (rng.standard_normal((512, window)) * 0.05).astype(np.float32)
    seconds = _best_of(lambda: final_frame_posteriors(model.network, log_mel, clips, batch_size=64), 2)
    results["classify_clips_per_second"] = len(clips) / seconds

    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"model: {model.network.n_parameters()} parameters, one thread, {args.seconds:.0f} s of audio")
    for block_ms, value in rtf.items():
        print(f"streaming, {block_ms:>4} ms blocks: real-time factor {value:.4f} ({value * 1e4:.1f} us per 10 ms "
              f"of audio), {rerun_s_per_audio_s / value:.1f}x cheaper than the window re-run")
    print(f"1 s window re-run every 30 ms: real-time factor {rerun_s_per_audio_s:.4f}")
    print(f"streaming (100 ms blocks) is {results['streaming_speedup_vs_rerun']:.0f}x cheaper than the window re-run")
    for n, us in per_frame.items():
        print(f"network alone, {n:>2} frame(s) per call: {us:.1f} us per frame")
    print(f"classify: {results['classify_clips_per_second']:.0f} clips per second (features + network, batched)")


if __name__ == "__main__":
    main()

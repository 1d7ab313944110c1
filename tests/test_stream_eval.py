"""Long test streams, their scoring, and detector tuning on validation streams (issue 4's tools)."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from audio.config import FrontendConfig
from conftest import TRAIN_WORDS, make_dataset, run_cli
from model.detector import Detection
from model.stream_eval import StreamConfig, WordSpan, make_stream, pool_scores, read_labels, score_stream


def test_scoring_follows_tensorflows_rules():
    spans = [WordSpan("yes", 0, 1000), WordSpan("_unknown_", 3000, 4000), WordSpan("stop", 6000, 7000),
             WordSpan("go", 9000, 10000)]
    events = [Detection(0.9, "yes", 0.9),      # correct
              Detection(1.2, "yes", 0.9),      # the same word again: a false positive
              Detection(3.5, "no", 0.9),       # in an unknown word's slot: a false positive
              Detection(7.74, "left", 0.9),    # inside stop's window (end + 750 ms): wrong
              Detection(10.76, "go", 0.9)]     # 760 ms after go's end: too late, a false positive
    score = score_stream(events, spans, duration_s=12.0)
    assert (score.words, score.matched, score.correct, score.wrong, score.false_positives) == (3, 2, 1, 1, 3)
    d = score.as_dict()
    assert d["correct_pct"] == pytest.approx(100 / 3) and d["false_alarms_per_hour"] == pytest.approx(3 / (12 / 3600))
    both = pool_scores([score, score_stream([], [WordSpan("up", 0, 1000)], 12.0)])
    assert (both.words, both.correct, both.false_positives) == (4, 1, 3) and both.hours == pytest.approx(24 / 3600)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("sc"))


def test_stream_places_each_clip_in_its_slot(dataset):
    cfg = StreamConfig(seconds=30.0, seed=4)
    samples, spans = make_stream(dataset, "validation", cfg, FrontendConfig.legacy_v4())
    assert samples.shape == (30 * 16000,) and len(spans) == 10
    clips = {w: sf.read(dataset / w / "cccc2222_nohash_0.wav", dtype="float32")[0] for w in TRAIN_WORDS}
    for slot, span in enumerate(spans):
        assert slot * 3000 <= span.start_ms and span.end_ms <= (slot + 1) * 3000
        assert span.end_ms - span.start_ms == pytest.approx(1000)
        word = "house" if span.label == "_unknown_" else span.label
        start = int(span.start_ms * 16)
        heard = samples[start:start + 16000]
        # The validation speaker's clip is there, over quieter noise.
        assert np.corrcoef(heard, clips[word])[0, 1] > 0.5
    assert {s.label for s in spans} <= set(TRAIN_WORDS[:4]) | {"_unknown_"}


def test_make_stream_then_stream_eval_from_the_command_line(dataset, tmp_path):
    wav, labels = tmp_path / "s.wav", tmp_path / "s.csv"
    made = run_cli("make-stream", "--data", str(dataset), "--split", "test", "--out", str(wav), "--seconds", "30")
    assert made.returncode == 0, made.stderr
    assert len(read_labels(labels)) == 10
    out = run_cli("stream-eval", "--wav", str(wav), "--labels", str(labels), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["words"] == sum(s.label != "_unknown_" for s in read_labels(labels))
    # Clear words of a known voice over light noise: the shipped model finds most of them.
    assert result["correct"] >= result["words"] // 2
    # stream-eval's counts are `detect`'s events scored against the labels (the same recognizer).
    detected = run_cli("detect", "--json", str(wav))
    assert detected.returncode == 0, detected.stderr
    events = [Detection(e["time"], e["label"], e["score"]) for e in map(json.loads, detected.stdout.splitlines())]
    again = score_stream(events, read_labels(labels), 30.0)
    assert (result["correct"], result["wrong"], result["false_positives"]) == (again.correct, again.wrong,
                                                                             again.false_positives)


def test_tune_detector_pools_validation_streams_and_writes_the_choice(dataset, tmp_path):
    from model.checkpoint import default_model_dir
    model_dir = tmp_path / "m"
    shutil.copytree(default_model_dir(), model_dir)
    out = run_cli("tune-detector", "--data", str(dataset), "--model", str(model_dir), "--seconds", "30",
                  "--validation-streams", "2", "--write", timeout_s=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["validation"]["hours"] == pytest.approx(2 * 30 / 3600)   # two streams pooled
    assert summary["test"]["hours"] == pytest.approx(30 / 3600)
    written = json.loads((model_dir / "config.json").read_text())
    assert written["detector"] == summary["chosen"]
    assert written["metrics"]["streaming"]["validation"] == summary["validation"]

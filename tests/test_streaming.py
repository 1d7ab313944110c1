"""The streaming recognizer with the shipped model: chunking, reset, and detection at the right times."""
import numpy as np
import pytest

from model.streaming import StreamingRecognizer
from conftest import make_stream

PLACEMENTS = [("yes", 1.0), ("stop", 4.0), ("left", 7.0)]


@pytest.fixture(scope="module")
def stream():
    return make_stream(PLACEMENTS + [("house", 10.0)], total_s=12.0)


def _run(recognizer, samples, chunk_samples):
    updates = [recognizer.process(samples[i:i + chunk_samples]) for i in range(0, samples.size, chunk_samples)]
    return (np.concatenate([u.posteriors for u in updates]), [e for u in updates for e in u.events],
            np.concatenate([u.hidden for u in updates]))


def test_results_do_not_depend_on_chunk_size(model, stream):
    stream = stream[:int(5.5 * 16000)]  # "yes" and "stop"; 160-sample chunks make this the slow part
    reference_post, reference_events, reference_hidden = _run(StreamingRecognizer(model), stream, 16000)
    assert len(reference_events) >= 1
    for chunk in (160, 161, 1000, 4801):
        post, events, hidden = _run(StreamingRecognizer(model), stream, chunk)
        np.testing.assert_allclose(post, reference_post, atol=1e-4)
        np.testing.assert_allclose(hidden, reference_hidden, atol=1e-4)
        assert [(e.time_s, e.label) for e in events] == [(e.time_s, e.label) for e in reference_events]


def test_reset_equals_a_fresh_recognizer(model, stream):
    used = StreamingRecognizer(model)
    _run(used, stream[:50000], 777)
    used.reset()
    post, events, _ = _run(used, stream, 3200)
    fresh_post, fresh_events, _ = _run(StreamingRecognizer(model), stream, 3200)
    np.testing.assert_allclose(post, fresh_post, atol=1e-5)
    assert events == fresh_events


def test_finds_the_words_at_their_times(model, stream):
    _, events, _ = _run(StreamingRecognizer(model), stream, 1600)
    found = [(e.label, e.time_s) for e in events]
    assert [label for label, _ in found] == [word for word, _ in PLACEMENTS], found
    for (_, fired_s), (_, start_s) in zip(found, PLACEMENTS):
        # An event fires after the word is heard: within the 1 s clip or shortly after it.
        assert start_s + 0.2 <= fired_s <= start_s + 1.5


def test_update_shapes_follow_the_frames(model):
    recognizer = StreamingRecognizer(model)
    frontend = model.frontend
    first = recognizer.process(np.zeros(frontend.window_samples - 1, np.float32))
    assert first.log_mel.shape == (0, frontend.n_mels)
    samples = np.random.default_rng(0).standard_normal(frontend.window_samples + 9 * frontend.hop_samples) * 0.1
    second = recognizer.process(samples[frontend.window_samples - 1:].astype(np.float32))
    assert second.start_frame == 0 and second.posteriors.shape == (10, len(model.labels))
    assert second.hidden.shape == (10, model.network.cfg.hidden_size)
    # The first window - 1 samples were zeros; the (smoothed) posteriors are the offline network's on
    # the same audio, through the model's detector smoothing.
    import torch
    from audio.features import LogMel
    from model.detector import Detector
    from model.labels import COMMANDS
    audio = np.concatenate([np.zeros(frontend.window_samples - 1), samples[frontend.window_samples - 1:]])
    logits, _ = model.network(LogMel(frontend)(torch.from_numpy(audio.astype(np.float32)))[None])
    detector = Detector(model.detector, model.labels, COMMANDS, frontend.hop_ms, frontend.window_ms)
    smoothed, _ = detector.process(torch.softmax(logits[0], -1).detach().numpy())
    np.testing.assert_allclose(second.posteriors, smoothed, atol=1e-4)

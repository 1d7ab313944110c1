import numpy as np

from model.detector import Detector, DetectorConfig
from model.labels import COMMANDS, LABELS

YES, UNKNOWN, SILENCE = LABELS.index("yes"), LABELS.index("_unknown_"), LABELS.index("_silence_")


def _frames(sequence: list[tuple[int, float, int]]) -> np.ndarray:
    """[(label index, probability, n frames)] -> posteriors [T, C]; the rest of the mass on silence."""
    rows = []
    for label, prob, n in sequence:
        row = np.zeros(len(LABELS), np.float32)
        row[label] = prob
        row[SILENCE] += 1.0 - prob
        rows += [row] * n
    return np.stack(rows)


def _detector(**kw) -> Detector:
    return Detector(DetectorConfig(**kw), LABELS, COMMANDS, hop_ms=10.0, window_ms=25.0)


def test_fires_once_per_word_with_time_of_firing_frame():
    det = _detector(smoothing_ms=30, threshold=0.55, suppression_ms=500)
    _, events = det.process(_frames([(SILENCE, 1.0, 50), (YES, 0.9, 30), (SILENCE, 1.0, 50)]))
    assert [e.label for e in events] == ["yes"]
    # Frame 51 (index 50) is the first with 0.9 "yes"; the 3-frame average passes 0.55 at index 51.
    assert events[0].time_s == round((51 * 10 + 25) / 1000, 3)


def test_one_event_per_word_even_if_the_posterior_lingers():
    det = _detector(smoothing_ms=10, threshold=0.5, suppression_ms=300)
    _, events = det.process(_frames([(YES, 0.9, 200)]))
    assert len(events) == 1


def test_suppression_and_rearming():
    det = _detector(smoothing_ms=10, threshold=0.5, suppression_ms=300)
    # yes, a dip below the re-arm level, yes again within 300 ms: suppressed; after 300 ms: fires.
    _, events = det.process(_frames([(YES, 0.9, 10), (SILENCE, 1.0, 5), (YES, 0.9, 10), (SILENCE, 1.0, 30),
                                     (YES, 0.9, 10)]))
    assert [round(e.time_s - events[0].time_s, 2) for e in events] == [0.0, 0.55]
    # A dip that stays above threshold * rearm_ratio does not re-arm the same label.
    det = _detector(smoothing_ms=10, threshold=0.5, suppression_ms=0)
    _, events = det.process(_frames([(YES, 0.9, 10), (YES, 0.3, 50), (YES, 0.9, 10)]))
    assert len(events) == 1
    # Another command fires while the first is still disarmed.
    det = _detector(smoothing_ms=10, threshold=0.5, suppression_ms=0)
    _, events = det.process(_frames([(YES, 0.9, 10), (LABELS.index("no"), 0.9, 10)]))
    assert [e.label for e in events] == ["yes", "no"]


def test_threshold_and_non_commands():
    det = _detector(smoothing_ms=10, threshold=0.95, suppression_ms=100)
    assert det.process(_frames([(YES, 0.9, 30)]))[1] == []
    det.threshold = 0.5  # changed while running, as the GUI slider does
    assert len(det.process(_frames([(YES, 0.9, 5)]))[1]) == 1
    assert det.process(_frames([(UNKNOWN, 1.0, 100)]))[1] == []


def test_smoothing_averages_and_reset_clears():
    det = _detector(smoothing_ms=40, threshold=0.99, suppression_ms=0)
    smoothed, _ = det.process(_frames([(YES, 1.0, 2), (SILENCE, 1.0, 2)]))
    np.testing.assert_allclose(smoothed[:, YES], [1.0, 1.0, 2 / 3, 0.5], atol=1e-6)
    det.reset()
    smoothed, _ = det.process(_frames([(SILENCE, 1.0, 1)]))
    assert smoothed[0, YES] == 0.0


def _reference_events(cfg: DetectorConfig, posteriors: np.ndarray) -> list[tuple[float, str]]:
    """The detector's rules applied one frame at a time, written as plainly as possible."""
    smoothing = max(1, int(round(cfg.smoothing_ms / 10.0)))
    suppression = int(round(cfg.suppression_ms / 10.0))
    is_command = np.array([label in COMMANDS for label in LABELS])
    events, last_fire, disarmed = [], None, None
    for frame in range(1, len(posteriors) + 1):
        smoothed = posteriors[max(0, frame - smoothing):frame].astype(np.float64).mean(0)
        if disarmed is not None and smoothed[disarmed] < cfg.threshold * cfg.rearm_ratio:
            disarmed = None
        top = int(np.argmax(smoothed))
        if not is_command[top] or smoothed[top] < cfg.threshold or top == disarmed:
            continue
        if last_fire is not None and frame - last_fire < suppression:
            continue
        last_fire, disarmed = frame, top
        events.append((round(((frame - 1) * 10.0 + 25.0) / 1000.0, 3), LABELS[top]))
    return events


def test_blocks_of_any_size_give_the_frame_by_frame_events():
    rng = np.random.default_rng(0)
    # Bursty random posteriors: words of random labels and lengths, with silence between them.
    sequence = []
    for _ in range(150):
        sequence += [(SILENCE, 1.0, int(rng.integers(1, 40))),
                     (int(rng.integers(0, len(LABELS))), float(rng.uniform(0.3, 1.0)), int(rng.integers(1, 60)))]
    posteriors = _frames(sequence)
    posteriors = posteriors + rng.uniform(0, 0.05, posteriors.shape).astype(np.float32)
    for cfg in (DetectorConfig(smoothing_ms=150, threshold=0.6, suppression_ms=500),
                DetectorConfig(smoothing_ms=10, threshold=0.5, suppression_ms=0, rearm_ratio=0.8),
                DetectorConfig(smoothing_ms=250, threshold=0.4, suppression_ms=1500)):
        expected = _reference_events(cfg, posteriors)
        assert len(expected) > 5
        for block in (1, 7, 100, len(posteriors)):
            det = Detector(cfg, LABELS, COMMANDS, hop_ms=10.0, window_ms=25.0)
            events = []
            for start in range(0, len(posteriors), block):
                events += det.process(posteriors[start:start + block])[1]
            assert [(e.time_s, e.label) for e in events] == expected, (cfg, block)


def test_isolation_gate_drops_commands_out_of_running_speech_in_any_blocks():
    # "yes" right after 1 s of other speech, then "yes" after 1.5 s of silence.
    posteriors = _frames([(UNKNOWN, 0.95, 100), (YES, 0.9, 30), (SILENCE, 1.0, 150), (YES, 0.9, 30), (SILENCE, 1.0, 20)])
    plain = _detector(smoothing_ms=30, threshold=0.6, suppression_ms=300).process(posteriors)[1]
    assert [e.label for e in plain] == ["yes", "yes"]
    for block in (1, 7, 64, len(posteriors)):
        gated = _detector(smoothing_ms=30, threshold=0.6, suppression_ms=300, isolation_gate=0.5)
        events = [e for i in range(0, len(posteriors), block) for e in gated.process(posteriors[i:i + block])[1]]
        assert events == plain[1:], (block, events)       # only the isolated word


def test_the_gate_counts_a_personal_models_new_words_as_the_unknown_speech_they_came_from():
    """A personal model's new words take their probability from `_unknown_`: for its gate, other speech
    is their sum, so a command after running speech is dropped as the base model would drop it."""
    labels = LABELS + ("lights",)
    rows = np.zeros((100, len(labels)), np.float32)
    rows[:, UNKNOWN], rows[:, -1] = 0.35, 0.6            # running speech, read partly as "lights"
    rows[:, SILENCE] = 0.05
    word = np.zeros((30, len(labels)), np.float32)
    word[:, YES], word[:, SILENCE] = 0.9, 0.1
    posteriors = np.concatenate([rows, word, np.eye(len(labels), dtype=np.float32)[[SILENCE] * 20]])
    cfg = DetectorConfig(smoothing_ms=30, threshold=0.65, suppression_ms=300, isolation_gate=0.5)
    alone = Detector(cfg, labels, COMMANDS + ("lights",), 10.0, 25.0).process(posteriors)[1]
    assert [e.label for e in alone] == ["yes"]            # `_unknown_` alone (0.35) is under the gate
    split = Detector(cfg, labels, COMMANDS + ("lights",), 10.0, 25.0, unknown_words=("lights",))
    assert split.process(posteriors)[1] == []             # with "lights" (0.95): running speech

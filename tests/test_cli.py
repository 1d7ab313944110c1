"""`speechcmd classify` and `detect` as a user runs them: with the tests' frozen model (TEST_MODEL_DIR),
and the shipped model where a test says so."""
import json

import pytest
import soundfile as sf

from conftest import CLIPS_DIR, DATA_DIR, TEST_MODEL_DIR, WORDS, make_stream, run_cli


def test_the_shipped_model_labels_the_test_speaker_clips():
    out = run_cli("classify", "--json", str(CLIPS_DIR))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 12
    labels = {row["path"].rsplit("/", 1)[1][:-4]: row["label"] for row in rows}
    correct = sum(labels[word] == word for word in WORDS)
    assert correct >= 9, labels
    # The score is the network's posterior for that label at the clip's last frame.
    import torch
    from model.checkpoint import default_model_dir, load_checkpoint
    from audio.features import LogMel
    from conftest import read_clip
    model = load_checkpoint(default_model_dir())
    with torch.no_grad():
        logits, _ = model.network(LogMel(model.frontend)(torch.from_numpy(read_clip("stop")))[None])
    posterior = torch.softmax(logits[0, -1], -1)
    stop = next(row for row in rows if row["path"].endswith("stop.wav"))
    assert stop["score"] == pytest.approx(float(posterior.max()), abs=1e-3)
    assert stop["label"] == model.labels[int(posterior.argmax())]


def test_classify_plain_output_and_other_formats():
    out = run_cli("classify", "--model", str(TEST_MODEL_DIR), str(DATA_DIR / "formats" / "stop_44k_stereo.wav"), str(DATA_DIR / "formats" / "yes_8k.wav"))
    assert out.returncode == 0, out.stderr
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    assert [(p.rsplit("/", 1)[1], label) for p, label, _ in lines] == [("stop_44k_stereo.wav", "stop"), ("yes_8k.wav", "yes")]


def test_bad_files_are_reported_and_the_rest_still_run(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio at all\n")
    good = (CLIPS_DIR / "go.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(good[:30])
    paths = [tmp_path / "empty.wav", CLIPS_DIR / "go.wav", tmp_path / "text.wav", tmp_path / "truncated.wav",
             tmp_path / "missing.wav"]
    out = run_cli("classify", "--json", *map(str, paths))
    assert out.returncode == 2
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(p) for p in paths]
    assert [("error" in row) for row in rows] == [True, False, True, True, True]
    assert "not found" in rows[4]["error"]
    errors = out.stderr.splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert "Traceback" not in out.stderr


def test_long_clip_is_judged_at_its_most_speech_like_moment(tmp_path):
    samples = make_stream([("right", 1.2)], total_s=3.5)
    sf.write(tmp_path / "long.wav", samples, 16000)
    sf.write(tmp_path / "noise.wav", make_stream([], total_s=3.0), 16000)
    out = run_cli("classify", "--json", "--model", str(TEST_MODEL_DIR), str(tmp_path / "long.wav"), str(tmp_path / "noise.wav"))
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["label"] for line in out.stdout.splitlines()] == ["right", "_silence_"]


def test_detect_reports_events_as_json_lines(tmp_path):
    placements = [("no", 0.5), ("go", 3.0), ("down", 6.5)]
    sf.write(tmp_path / "rec.wav", make_stream(placements, total_s=9.0, seed=3), 16000)
    out = run_cli("detect", "--json", "--model", str(TEST_MODEL_DIR), str(tmp_path / "rec.wav"))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["label"] for e in events] == [w for w, _ in placements], events
    for event, (_, start_s) in zip(events, placements):
        assert start_s + 0.2 <= event["time"] <= start_s + 1.5
        assert set(event) == {"time", "label", "score"}


def test_detect_threshold_override_silences_it(tmp_path):
    sf.write(tmp_path / "rec.wav", make_stream([("yes", 0.5)], total_s=2.5), 16000)
    found = run_cli("detect", "--json", "--model", str(TEST_MODEL_DIR), str(tmp_path / "rec.wav"))
    assert found.returncode == 0 and found.stderr == "" and '"yes"' in found.stdout
    silenced = run_cli("detect", "--json", "--model", str(TEST_MODEL_DIR), "--threshold", "1.01", str(tmp_path / "rec.wav"))
    assert silenced.returncode == 0 and silenced.stderr == "" and silenced.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["detect", "nothing.wav"], "not found"),
    (["classify", "--model", "no_such_model", "x.wav"], "does not exist"),
    (["evaluate", "--data", "no_such_folder"], "does not exist"),
])
def test_user_errors_are_one_line(args, message):
    out = run_cli(*args)
    assert out.returncode == 1
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_a_model_from_before_the_image_frontend_still_runs_with_its_own_frontend(stream_wav):
    """v4's config.json (25 ms frames, 20-7600 Hz, natural log, PCEN) has none of the newer frontend
    fields: it loads with its own frontend, classifies and detects (numpy and torch paths)."""
    from model.model_config import read_model_spec
    v4 = TEST_MODEL_DIR
    spec = read_model_spec(v4)
    assert (spec.frontend.window_ms, spec.frontend.f_max_hz, spec.frontend.log_scale) == (25.0, 7600.0, 1.0)
    assert spec.frontend.feature_floor is None
    out = run_cli("classify", "--json", "--model", str(v4), str(CLIPS_DIR))
    assert out.returncode == 0, out.stderr
    labels = {json.loads(line)["path"].rsplit("/", 1)[1][:-4]: json.loads(line)["label"] for line in out.stdout.splitlines()}
    assert sum(labels[word] == word for word in WORDS) >= 9, labels
    out = run_cli("detect", "--json", "--model", str(v4), str(stream_wav))
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["label"] for line in out.stdout.splitlines()] == ["yes", "stop"]


def test_damaged_data_is_one_line_for_every_subcommand_that_reads_a_data_folder(tmp_path):
    """A damaged noise recording, a damaged word clip, an unwritable output: one `speechcmd:` line
    on stderr and exit status 1, never a traceback."""
    from conftest import make_dataset
    data = make_dataset(tmp_path / "sc")
    (data / "_background_noise_" / "tap.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEdamaged")
    cases = [("evaluate", "--data", str(data)),
             ("make-stream", "--data", str(data), "--split", "validation", "--out", str(tmp_path / "s.wav")),
             ("train", "--data", str(data), "--out", str(tmp_path / "m"), "--epochs", "1", "--quiet"),
             ("tune-detector", "--data", str(data), "--seconds", "5")]
    for args in cases:
        out = run_cli(*args)
        assert out.returncode == 1, (args[0], out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, (args[0], out.stderr)
        assert out.stderr.startswith("speechcmd: ") and "tap.wav" in out.stderr, (args[0], out.stderr)

    data = make_dataset(tmp_path / "sc2")
    (data / "yes" / "cccc2222_nohash_0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEdamaged")   # a validation clip
    out = run_cli("make-stream", "--data", str(data), "--split", "validation", "--out", str(tmp_path / "s.wav"),
                  "--seconds", "20")
    assert out.returncode == 1 and "cccc2222_nohash_0.wav" in out.stderr and "Traceback" not in out.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = run_cli("make-stream", "--data", str(data), "--split", "test", "--out", str(blocker / "s.wav"),
                  "--seconds", "20")
    assert out.returncode == 1 and out.stderr.startswith("speechcmd: ") and "Traceback" not in out.stderr
    assert "a_file" in out.stderr


def test_stream_eval_on_a_folder_without_audio_is_an_error(tmp_path):
    out = run_cli("stream-eval", "--wav", str(tmp_path))
    assert out.returncode == 1 and "no audio files" in out.stderr and "Traceback" not in out.stderr

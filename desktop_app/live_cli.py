"""The live subcommands of `speechcmd`: `gui`, `listen` and `devices`.

`listen` and `devices` never import Qt (they work on a machine without a display); PySide6 is imported
only on the `gui` path. Errors the user can fix end as one line (cli_common.UserError), never a traceback.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from desktop_app.cli_common import (MODEL_HELP, UserError, _add_actions_options, _add_detector_options, _detector_config,
                                    _load_model, _start_action_runner, print_event)
DEVICE_HELP = "input device: index or (part of) the name from `speechcmd devices` (default: system default)"


def add_live_commands(sub) -> None:
    """Register `gui`, `listen` and `devices` on the `speechcmd` subparsers."""
    p = sub.add_parser("gui", help="the desktop app: recognize commands live from a microphone")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--device", help=DEVICE_HELP + "; starts listening at once")
    p.add_argument("--input-file", metavar="WAV", help="play this recording through the live pipeline in real time")
    p.add_argument("--screenshot", metavar="PNG", help="with --input-file: save the window when the file ends, then exit")
    p.add_argument("--actions", metavar="FILE", help="TOML file binding commands to programs or key presses "
                                                     "(default: actions.toml in your config folder, when it exists)")
    p.add_argument("--tray", action="store_true", help="start in the system tray, listening in the remembered mode "
                                                       "(the window opens from the tray icon)")
    p.add_argument("--talk-key", metavar="KEY", help="the push-to-talk key, an X11 key name (F9, Pause, Scroll_Lock, "
                                                     "Control_R...); remembered (default F9)")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("listen", help="recognize commands live from a microphone in the terminal")
    p.add_argument("--json", action="store_true", help='JSON Lines output: {"time", "label", "score"}')
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl+C)")
    p.add_argument("--model", help=MODEL_HELP)
    _add_detector_options(p)
    _add_actions_options(p, uses_default=True)
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("devices", help="list the audio input devices")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("install-desktop", help="add a launcher to the desktop's menu (and optionally start at login)")
    p.add_argument("--autostart", action="store_true", help="also start the app in the tray when you log in")
    p.add_argument("--uninstall", action="store_true", help="remove the launcher, icon and autostart entry")
    p.set_defaults(func=cmd_install_desktop)


def cmd_install_desktop(args) -> int:
    from desktop_app.desktop_entry import install, uninstall
    if args.uninstall and args.autostart:
        return _usage_error("use either --autostart or --uninstall, not both")
    try:
        lines = uninstall() if args.uninstall else install(args.autostart)
    except OSError as exc:
        raise UserError(f"cannot write the desktop files: {exc}") from None
    print("\n".join(lines))
    return 0


def _usage_error(message: str) -> int:
    """Options that do not go together: one line, exit status 2 (like argparse's own usage errors)."""
    print(f"speechcmd: {message}", file=sys.stderr)
    return 2


def cmd_devices(args) -> int:
    from audio.capture import CaptureError, list_input_devices
    try:
        devices = list_input_devices()
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    if not devices:
        raise UserError("no audio input device found (is a microphone connected and an audio server running?)")
    for device in devices:
        print(device.describe())
    return 0


def cmd_listen(args) -> int:
    """Events are printed as they fire; `time` counts the audio heard since the first captured sample
    (a gap while the input was lost or paused is not counted). A lost device or audio server is reported
    on stderr and listening resumes on its own when it is back. SIGUSR1 pauses (the microphone is
    closed), SIGUSR2 resumes."""
    import signal
    from audio.capture import CaptureError, Pacer, ReconnectingMicrophone, filter_native_audio_messages, find_input_device
    if args.seconds is not None and args.seconds <= 0:
        return _usage_error("--seconds must be positive")
    try:
        # Checked before the model loads (torch takes seconds to import): a typo fails at once.
        find_input_device(args.device)
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    from model.model_config import default_model_dir, read_model_spec
    # The actions file is checked before the network loads, too: its errors name a line to fix.
    runner = _start_action_runner(args, read_model_spec(args.model or default_model_dir()).labels, uses_default=True)
    from model.streaming import StreamingRecognizer
    model = _load_model(args.model, streaming_only=True)
    if "torch" in sys.modules:   # a non-GRU model steps in torch
        from desktop_app.model_loader import use_one_torch_thread
        use_one_torch_thread()
    recognizer = StreamingRecognizer(model, _detector_config(model, args))
    filter_native_audio_messages()
    source = ReconnectingMicrophone(args.device, model.frontend.sample_rate_hz)
    announced = False
    wanted = {"paused": False}
    paused = False
    dropped_before = 0   # blocks dropped by the streams closed at a pause
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: wanted.update(paused=True))
        signal.signal(signal.SIGUSR2, lambda *_: wanted.update(paused=False))
    try:
        source.start()
        started_at = time.monotonic()
        pacer = Pacer()   # one recognizer call per tick on all audio captured meanwhile, as in the GUI
        while args.seconds is None or time.monotonic() - started_at < args.seconds:
            pacer.wait()
            if wanted["paused"] != paused:
                paused = wanted["paused"]
                if paused:
                    source.stop()
                    dropped_before += source.dropped_blocks + source.overflows
                    print("paused: the microphone is closed (SIGUSR2 resumes)", file=sys.stderr, flush=True)
                else:
                    source = ReconnectingMicrophone(args.device, model.frontend.sample_rate_hz)
                    source.start()
                    announced = False
            if paused:
                continue
            block = source.read(0.1)
            for notice in source.take_notices():
                print(("speechcmd: " if notice.lost else "") + notice.message, file=sys.stderr, flush=True)
            if block is None:
                continue
            if not announced:
                # Announced at the first block, not at start(): an audio server may take a moment to
                # deliver, and whoever waits for this line (a test, a script) then knows audio flows.
                announced = True
                until = f" for {args.seconds:g} s" if args.seconds is not None else "; Ctrl+C to stop"
                print(f"listening on {source.name} ({source.device_rate_hz} Hz){until}", file=sys.stderr, flush=True)
            for event in recognizer.process(block).events:
                print_event(event, args.json)
                if runner is not None:
                    runner.handle(event)
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        pass  # Ctrl+C is the normal way to stop listening
    finally:
        source.stop()
        if runner is not None:
            runner.close(wait=False)   # a program still running is left to finish on its own
    dropped = dropped_before + (0 if paused else source.dropped_blocks + source.overflows)
    if dropped:
        print(f"warning: {dropped} audio block(s) were dropped (the computer could not keep up)", file=sys.stderr)
    return 0


def _age_text() -> str:
    age_s = _process_age_s()
    return "?" if age_s is None else f"{age_s:.3f}"


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        return uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cmd_gui(args) -> int:
    from audio.capture import CaptureError, filter_native_audio_messages, find_input_device
    # Arguments and device first: they fail in milliseconds, the model needs torch (seconds).
    if args.screenshot and not args.input_file:
        return _usage_error("--screenshot needs --input-file (the screenshot is taken when the file ends)")
    if args.input_file:
        path = Path(args.input_file)
        if not path.is_file():
            raise UserError(f"{path}: file not found")
        if args.device:
            return _usage_error("use either --device or --input-file, not both")
        if args.tray:
            return _usage_error("--tray listens to a microphone: it does not go with --input-file")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                  or os.environ.get("QT_QPA_PLATFORM")):
        # Without this check Qt aborts the process with a core dump and a multi-line hint.
        raise UserError("no display found: run it on a desktop session, or use `speechcmd listen` in a terminal "
                        "(for a headless screenshot set QT_QPA_PLATFORM=offscreen)")
    if args.talk_key:
        from desktop_app.hotkey import known_key
        if not known_key(args.talk_key):
            return _usage_error(f"--talk-key: unknown key '{args.talk_key}' (X11 key names: F9, Pause, Scroll_Lock, "
                                "Control_R...)")
    filter_native_audio_messages()
    device_name = None
    if args.device:
        try:
            device_name = find_input_device(args.device).name
        except CaptureError as exc:
            raise UserError(str(exc)) from None
    # Only config.json now; the network (torch, 2-3 s) loads in the background once the window shows.
    from desktop_app.model_loader import BackgroundModel
    from model.model_config import ModelLoadError, default_model_dir
    try:
        model = BackgroundModel.from_folder(args.model or default_model_dir())
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None
    return _run_gui(model, args, device_name)


def _remembered_model(shipped):
    """The model chosen in the window last time (a personal model), when it still loads; else `shipped`."""
    from PySide6.QtCore import QSettings

    from desktop_app.model_loader import BackgroundModel
    from desktop_app.live_session import SETTINGS_APPLICATION, SETTINGS_ORGANIZATION
    from model.model_config import ModelLoadError
    folder = QSettings(SETTINGS_ORGANIZATION, SETTINGS_APPLICATION).value("model")
    if not folder:
        return shipped
    try:
        return BackgroundModel.from_folder(folder)
    except ModelLoadError as exc:
        print(f"speechcmd: the model chosen last time cannot be used ({exc}); using the shipped model",
              file=sys.stderr)
        return shipped


def _run_gui(model, args, device_name: str | None) -> int:
    # Qt is imported here only: `listen`/`devices` and the other subcommands must work without it.
    import signal
    import tempfile

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.live_session import SETTINGS_APPLICATION, SETTINGS_ORGANIZATION, LiveSession

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(SETTINGS_ORGANIZATION)
    app.setApplicationName(SETTINGS_APPLICATION)

    settings = None
    scratch = None
    if args.screenshot:
        # A screenshot for the docs must not depend on (or change) this user's remembered settings.
        scratch = tempfile.TemporaryDirectory()
        settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    if args.model is None and settings is None:
        model = _remembered_model(model)
    if args.actions:
        # Checked against the model the window will use, before it is built: a one-line error.
        from desktop_app.actions import ActionsError, load_actions
        try:
            load_actions(args.actions, model.spec.labels)
        except ActionsError as exc:
            raise UserError(str(exc)) from None
    session = LiveSession(model, settings=settings, actions_path=args.actions)
    session.load_actions(required=args.actions is not None)
    if device_name:
        session.device = device_name
    if args.talk_key:
        session.set_talk_key(args.talk_key)
    outcome = {"status": 0}
    timing = os.environ.get("SPEECHCMD_TIMING") == "1"

    def on_recognizer_started(caught_up_s: float) -> None:
        if timing:
            cpu = os.times()
            print(f"speechcmd timing: recognizer ready {_age_text()} s after process start "
                  f"(cpu {cpu.user + cpu.system:.3f} s, caught up on {caught_up_s:.2f} s of audio)",
                  file=sys.stderr, flush=True)

    session.recognizer_started.connect(on_recognizer_started)

    # A recording played for a look (--input-file) is a one-off: no tray. Otherwise the tray icon keeps
    # the app running when the window is closed, where the desktop has a tray.
    tray = None
    if not args.input_file:
        from desktop_app.tray import Tray, tray_available
        if tray_available():
            from desktop_app.personal_models import list_personal_models, personal_models_dir
            tray = Tray(session, lambda: open_window(), lambda: quit_app(),
                        lambda: list_personal_models(personal_models_dir()))
            app.setQuitOnLastWindowClosed(False)
        elif args.tray:
            print("speechcmd: this desktop has no system tray: the window stays open (closing it quits)",
                  file=sys.stderr, flush=True)
    holder = {"window": None}

    def make_window():
        if holder["window"] is None:
            import pyqtgraph as pg   # the plots: imported only when the window is first opened
            pg.setConfigOptions(antialias=False, background="#101418", foreground="#d0d0d0")
            from desktop_app.window import MainWindow
            window = MainWindow(session=session)
            window.first_frame_drawn.connect(on_first_frame)
            if tray is not None:
                window.keep_in_tray = True
                window.hidden_to_tray.connect(lambda: tray.say_once(
                    session.settings, "told_tray", "speechcmd keeps listening in the tray: "
                    "its menu opens the window again, pauses listening or quits"))
            holder["window"] = window
        return holder["window"]

    def open_window() -> None:
        window = make_window()
        window.show()
        window.raise_()
        window.activateWindow()

    def quit_app() -> None:
        if holder["window"] is not None:
            # Qt 6 asks every window to close before it quits: one that hides to the tray would refuse.
            holder["window"].keep_in_tray = False
            holder["window"].shutdown()
        session.shutdown()
        app.quit()

    def on_first_frame() -> None:
        if timing:
            # CPU time too: on a busy machine the wall time mostly measures the other processes.
            cpu = os.times()
            print(f"speechcmd timing: first frame drawn {_age_text()} s after process start "
                  f"(cpu {cpu.user + cpu.system:.3f} s)", file=sys.stderr, flush=True)

    start_in_tray = args.tray and tray is not None
    window = None if start_in_tray else make_window()
    if args.input_file:
        pending = {"playback": True, "analysis": True}

        def maybe_finish() -> None:
            if not args.screenshot or any(pending.values()):
                return
            window.redraw(full=True)
            if window.grab().save(args.screenshot):
                # What the picture shows, in words: the history rows and the large last command.
                shown = [window.history_list.item(i).text().split()[1:] for i in range(window.history_list.count())]
                history = ", ".join(f"{row[2]} at {row[0]} s" for row in reversed(shown)) or "none"
                last = window.last_command_label.text().split("<")[0].strip()
                print(f"screenshot saved to {args.screenshot} (history: {history}; last command: {last})",
                      file=sys.stderr)
            else:
                print(f"speechcmd: could not write the screenshot {args.screenshot}", file=sys.stderr)
                outcome["status"] = 1
            window.close()
            app.quit()

        def on_playback_done(ok: bool) -> None:
            if not ok:
                print(f"speechcmd: {session.run_error}", file=sys.stderr)
                outcome["status"] = 1
            pending["playback"] = False
            maybe_finish()

        def on_analysis_done(analysis) -> None:
            if analysis.error:
                outcome["status"] = 1
            pending["analysis"] = False
            maybe_finish()

        session.run_finished.connect(on_playback_done)
        window.analysis_finished.connect(on_analysis_done)
        # The timeline shows the whole file at once (the fast path) while the live view plays it.
        window.analyze_file(args.input_file)
        session.start_file_playback(args.input_file)
    elif args.tray:
        session.model.start()   # no window to wait for: the network loads at once
        session.set_frames_wanted(window is not None)
        if device_name or not session.paused_at_start:
            session.set_mode(session.talk_mode)
    elif device_name:
        index = window.device_combo.findData(device_name)
        if index >= 0:
            window.device_combo.setCurrentIndex(index)
        session.start_live()

    if tray is not None:
        tray.show()
    if window is not None:
        window.show()
    # Qt's event loop does not return to Python, so Ctrl+C would wait for the next event: poll it.
    signal.signal(signal.SIGINT, lambda *_: quit_app())
    keep_python_awake = QTimer()
    keep_python_awake.timeout.connect(lambda: None)
    keep_python_awake.start(200)
    app.exec()
    if holder["window"] is not None:
        holder["window"].shutdown()
    session.shutdown()
    if scratch is not None:
        scratch.cleanup()
    return outcome["status"]

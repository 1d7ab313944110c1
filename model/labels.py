"""Speech Commands label convention."""
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
LABELS = COMMANDS + (UNKNOWN, SILENCE)

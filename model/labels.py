"""Speech Commands label convention."""
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
LABELS = COMMANDS + (UNKNOWN, SILENCE)


def command_labels(labels) -> tuple[str, ...]:
    """The labels of a model that are commands (fire events): the 10 above plus any enrolled words."""
    return tuple(label for label in labels if label not in (UNKNOWN, SILENCE))

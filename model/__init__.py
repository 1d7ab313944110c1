"""The network, checkpoints, training, evaluation and the streaming recognizer. No Qt here."""

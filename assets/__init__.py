"""Package data: the shipped model (assets/model) and demo clips (assets/demo)."""

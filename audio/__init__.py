"""Samples and frames: configuration, file reading, resampling, features, augmentation, capture."""

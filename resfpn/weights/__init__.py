"""Trained weights: the published sources, their download and cache, loading checkpoints, BatchNorm folding."""

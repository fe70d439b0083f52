"""Pre-training: configuration, the training loop, checkpoints and distributed launch."""

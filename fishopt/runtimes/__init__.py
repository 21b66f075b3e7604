"""Runtimes: load an artifact, call it on a batch, get logits. One small module per runtime."""

"""Validation: scoring trials of checkpoints, and normalising the scores."""

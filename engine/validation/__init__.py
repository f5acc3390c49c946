"""Validation: speaker-verification scores of checkpoints and what is drawn from them."""

"""Validation: speaker-verification trials, their embeddings and scores."""

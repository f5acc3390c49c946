"""Validation: speaker-verification trials, their embeddings and scores, and normalising the scores."""

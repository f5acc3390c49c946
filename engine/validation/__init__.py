"""Validation: speaker-verification trials, their embeddings and scores, normalising the scores, and what is
drawn from them (DET)."""

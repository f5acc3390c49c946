"""Extraction and what is done with extracted embeddings (the diarization check)."""

"""Extraction: embeddings of whole protocols, the diarization check made from them, and the embedding
network exported for other runtimes."""

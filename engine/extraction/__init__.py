"""Extraction: embeddings of whole protocols, and the embedding network exported for other runtimes."""

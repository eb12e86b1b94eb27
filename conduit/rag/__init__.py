"""Retrieval-augmented generation: documents, splitters, embedders, stores, retrievers."""

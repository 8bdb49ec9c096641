"""Thin shells over the library: the ``hybrid-search`` CLI and the HTTP search service."""

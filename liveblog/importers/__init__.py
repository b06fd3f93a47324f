"""Importers: other systems' exports turned into a story document (liveblog/transfer.py)."""

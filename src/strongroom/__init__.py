"""Strongroom: a search engine for personal records that cannot leak."""

__version__ = "0.1.0"

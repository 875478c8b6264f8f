"""Strongroom: a search engine for personal records that cannot leak."""

__version__ = "0.1.0"
RELEASE_DATE = "2026-11-28"  # ISO date of this release; `strongroom doctor` warns when it is a year old.

"""Bundled contract suite."""

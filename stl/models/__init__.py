"""Whole-image classifiers (being moved here from :mod:`stl.modeling`)."""

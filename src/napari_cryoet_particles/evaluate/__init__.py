"""Scoring picks against ground truth."""

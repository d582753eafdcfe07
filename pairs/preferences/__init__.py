"""Preference pairs from votes, ratings and auto-scores: decisions, annotator weights, agreement."""

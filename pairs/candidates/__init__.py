"""Candidate clips: generated from a model (`pairs generate`) or made elsewhere (`pairs ingest`)."""

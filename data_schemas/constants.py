"""Constants every stage shares: the frame rate and sample rate clips are judged at, and the criteria vocabulary."""

FPS = 25.0
"""Video frames per second of generated and scored clips (SyncNet's rate)."""

SAMPLE_RATE = 16_000
"""Audio samples per second of driving audio (wav2vec2's and SyncNet's rate)."""

CRITERIA: tuple[str, ...] = ("lip_sync", "expression", "motion", "overall")
"""The criteria an annotation task may ask, in display order; a campaign's task picks from these."""

"""Auto-scores of clips: the face track, lip sync, identity, expression, motion and quality."""

"""The procedural talking-portrait world: faces, speech-like audio, head motion, rendered clips."""

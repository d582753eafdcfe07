"""Reading and writing video, audio and image files (PyAV, H.264 + AAC)."""

"""The embedded family: a small reference-conditioned denoiser on exactly patchified 64 px frames, shipped trained."""

"""Video diffusion model families: one interface (family.py), the embedded family and real ones, loaded by path."""

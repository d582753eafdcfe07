"""The wan-audio family (Hallo4-class): Wan VACE transformer + wav2vec2 audio cross-attention + head pose."""

from model_families.wan_audio.convert import convert_hallo4
from model_families.wan_audio.family import WanAudioFamily
from model_families.wan_audio.sizes import init_model

__all__ = ["WanAudioFamily", "convert_hallo4", "init_model"]

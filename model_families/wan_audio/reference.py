"""How the reference image reaches the core: Hallo4's VACE layout, so Hallo4's weights work as trained.

The core sees T+1 latent frames: the clean reference latent first, then the T noisy latent frames (its output
for the reference frame is dropped). Its VACE context has, per latent frame, `2·C + 64` channels:

    reference frame:  [reference latent, zeros,        mask 0 × 64]
    video frame k:    [blank latent k,   blank latent k, mask 1 × 64]

where the blank latents encode an all-grey clip (Hallo4 asks VACE to generate every frame: its source video is
zeros and its mask ones) and the 64 mask channels are the VAE's 8×8 pixel cells folded into channels.
"""

from __future__ import annotations

import torch

MASK_CHANNELS = 64  # the VAE's spatial stride squared: Hallo4 folds each 8×8 mask cell into channels
REFERENCE_FRAMES = 1  # latent frames in front of the clip that hold the reference


def context_channels(latent_channels: int) -> int:
    """Channels of the VACE context for a VAE of `latent_channels`."""
    return 2 * latent_channels + MASK_CHANNELS


def core_inputs(noisy: torch.Tensor, reference: torch.Tensor, blank: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy latents [B, T, C, h, w], reference latents [B, C, h, w] and blank latents [T, C, h, w] →
    the core's latents [B, C, T+1, h, w] and VACE context [B, 2C+64, T+1, h, w]."""
    batch, frames, _, height, width = noisy.shape
    reference = reference.to(noisy)
    latents = torch.cat([reference[:, None], noisy], dim=1)
    mask = noisy.new_ones(batch, frames, MASK_CHANNELS, height, width)
    blank = blank.to(noisy).expand(batch, -1, -1, -1, -1)
    first = torch.cat([reference, torch.zeros_like(reference), torch.zeros_like(mask[:, 0])], dim=1)[:, None]
    context = torch.cat([first, torch.cat([blank, blank, mask], dim=2)], dim=1)
    return latents.transpose(1, 2), context.transpose(1, 2)


def clip_output(core_output: torch.Tensor) -> torch.Tensor:
    """The core's output [B, C, T+1, h, w] → the clip's part, time-first [B, T, C, h, w]."""
    return core_output[:, :, REFERENCE_FRAMES:].transpose(1, 2)

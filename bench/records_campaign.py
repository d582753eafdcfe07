"""A campaign of clip records without media, for the benchmarks and tests that need only the catalog: the annotation
server's load and assignment, pairs build and stats."""

import hashlib

from campaign.store import Campaign, media_path
from data_schemas import Clip, Condition


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_campaign(root, conditions: dict[str, list[str | None]]) -> Campaign:
    """A campaign of clip records only (no media): {condition: [degradation or None per clip]}.

    Conditions whose name starts with "world" get world clips (so in-sync vs degraded pairs are gold).
    """
    campaign = Campaign.open(root, create=True)
    media = f"media/00/{sha('m')}.png"
    campaign.add_conditions([Condition(condition_id=c, reference_image=media, audio=media) for c in conditions])
    clips = []
    for condition, degradations in conditions.items():
        for i, degradation in enumerate(degradations):
            digest = sha(f"{condition}/{i}")
            clips.append(Clip(sha256=digest, condition_id=condition, media_path=media_path(digest, ".mp4"),
                              generator="world" if condition.startswith("world") else "embedded",
                              generator_version="1", fps=25.0, frames=50, width=64, height=64, duration=2.0,
                              has_audio=True, seed=i, params={"degradation": degradation}))
    campaign.add_clips(clips)
    return campaign

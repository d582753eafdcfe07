import pytest

from bench.records_campaign import make_campaign
from campaign.store import Campaign


@pytest.fixture
def small_campaign(tmp_path) -> Campaign:
    """Two generated conditions of 4 clips and one world condition: 15 regular pairs, 3 gold pairs."""
    return make_campaign(tmp_path / "campaign", {
        "c1": [None] * 4, "c2": [None] * 4, "world-1": [None, "shift", "frozen_mouth", "jitter"],
    })

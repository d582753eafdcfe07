"""The auto-scores of a campaign that count: one `scorer/metric` per clip, marked values (no sync peak) left out.

The one place a clip's score is looked up by name, so the rule "a marked score does not count" holds alike for
the scripted annotators (annotate/simulate.py), the Bradley–Terry prior of the active assigner and of
`pairs build --from ranking` (pairs/preferences/bradley_terry.py), as it does for `pairs build`'s SQL.
"""

from __future__ import annotations

from campaign.store import Campaign
from pairs.scoring.scorers import UNMARKED_SQL


def clip_score_lookup(campaign: Campaign, score: str) -> dict[str, float]:
    """sha256 → value of one `scorer/metric` score; marked ones (no sync peak) are left out, as if unscored."""
    scorer, _, metric = score.partition("/")
    rows = campaign.connect(journals=False).execute(
        f"SELECT clip, value FROM scores WHERE scorer = ? AND metric = ? AND value IS NOT NULL AND {UNMARKED_SQL}",
        [scorer, metric],
    ).fetchall()
    return dict(rows)

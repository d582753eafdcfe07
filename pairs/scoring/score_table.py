"""What `pairs scores` and `pairs summary` show of the scores table: per metric counts, marks and mean ± sd.

Apart from pairs/scoring/score.py so that reading the table does not import the scorers' model stack.
"""

from __future__ import annotations

from campaign.store import Campaign
from pairs.scoring.scorers import UNMARKED_SQL


def score_table(campaign: Campaign) -> tuple[list[tuple], list[tuple[str, str]]]:
    """Per metric (scorer, metric, scored, skipped, reasons, marked, mean, sd), mean and sd over the unmarked
    values; per scorer (scorer, its versions)."""
    # Catalog only (no vote journal to read), scanned by DuckDB: a million clips' scores are not read whole.
    con = campaign.connect(journals=False)
    metrics = con.execute(f"""
        SELECT scorer, metric, count(value), count(*) - count(value),
               coalesce(string_agg(DISTINCT reason, '; '), ''),
               coalesce(count(value) FILTER (NOT {UNMARKED_SQL}) || ' ' ||
                        string_agg(DISTINCT json_extract_string(details, '$.mark'), '; '), ''),
               avg(value) FILTER ({UNMARKED_SQL}), stddev_samp(value) FILTER ({UNMARKED_SQL})
        FROM scores GROUP BY scorer, metric ORDER BY scorer, metric
    """).fetchall()
    versions = con.execute(
        "SELECT scorer, string_agg(DISTINCT scorer_version, '; ') FROM scores GROUP BY scorer ORDER BY scorer"
    ).fetchall()
    return metrics, versions

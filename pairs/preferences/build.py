"""`pairs build`: votes, ratings and auto-scores → win/lose pairs with their evidence, split by condition.

Sources:
- ab: weighted-majority decisions of A/B votes (`pairs.preferences.aggregate`), ties and both-bad never a win;
- rating: Hallo4's best vs worst clip per condition and criterion (mean over annotators), gap ≥ min_gap;
  with several criteria also the pair by r = the mean of the chosen criteria (criterion `mean`);
- auto: every clip pair of a condition whose auto-score gap is ≥ min_gap;
- hybrid: the ab pairs, plus auto pairs for clip pairs nobody voted on;
- ranking: every clip pair whose order a Bradley–Terry posterior fitted to a condition's votes is sure of
  (`pairs.preferences.ranking`), voted or ordered by transitivity and the auto-score prior.
A/B and ranking pairs carry the segment marks of the counted votes on their clip pair and criterion (chosen_marks,
rejected_marks); other pairs carry none.
Every step is SQL: DuckDB scans the campaign's Parquet (table partitions, sealed journal segments) and the
live journal segments; nothing loops over votes or pairs in Python (ranking fits one posterior per condition
and criterion in numpy).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa

from cli_kit.options import check_choices, option

from campaign.items import ab_items, gold_answers
from campaign.retractions import counted_view
from campaign.store import Campaign
from campaign.task import load_task
from data_schemas import PreferencePair, UserError, arrow_schema, conform
from pairs.preferences.aggregate import TiePolicy, decisions_view
from pairs.preferences.bradley_terry import PRIOR_SCORES, prior_scores
from pairs.preferences.ranking import RankingPrior, ranking_pairs
from pairs.scoring.scorers import HIGHER_IS_BETTER, UNMARKED_SQL
from pairs.preferences.annotator_weights import dawid_skene, gold_weights
from pairs.preferences.pair_marks import vote_marks



@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Every knob of `pairs build` with its default."""

    criterion: str = option("overall", "One criterion of the campaign's task, or all.")
    min_votes: int = option(1, "Votes a decision needs (ratings per clip in rating mode; votes of the condition "
                            "and criterion in ranking mode).", minimum=1)
    min_agreement: float = option(0.0, "Weighted share agreeing with the decision.", minimum=0.0, maximum=1.0)
    ties: TiePolicy = option("drop", "drop: a tie vote counts for neither clip; half: half for each.")
    weighting: Literal["none", "gold", "dawid-skene"] = option("none", "Annotator weights.")
    source: Literal["ab", "rating", "auto", "hybrid", "ranking"] = option(
        "ab", "Where pairs come from (ranking: the order a Bradley–Terry posterior of each condition's votes is "
        "sure of, asked or not).", flag="--from")
    min_confidence: float = option(0.9, "Ranking: the posterior probability of its order a pair needs (above 0.5).")
    ranking_prior: RankingPrior = option(
        "auto", "Ranking: auto starts each clip from its auto-score, as the active assigner does ("
        + ", ".join(f"{criterion}: {score}" for criterion, score in PRIOR_SCORES.items()) + "); none fits the votes "
        "alone, so only votes and transitivity decide (use it when that auto-score will judge the trained model).")
    min_gap: float = option(0.0, "Rating or auto-score gap a pair needs.", minimum=0.0)
    heldout: float = option(0.1, "Share of conditions held out.", minimum=0.0, maximum=0.99)
    seed: int = option(0, "Seed of the held-out split.")
    auto_score: str = option("sync/lse_c", "scorer/metric for auto pairs and disagreement flags (its better "
                             "direction comes from the scorers' table: lse_d lower, lse_c higher, …).")

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0.5 < self.min_confidence <= 1.0:
            raise UserError(f"--min-confidence {self.min_confidence}: a probability that the order is right; give "
                            "one above 0.5 and at most 1, e.g. 0.9")
        if HIGHER_IS_BETTER.get(self.auto_score) is None:
            directed = ", ".join(k for k, v in HIGHER_IS_BETTER.items() if v is not None)
            raise UserError(f"--auto-score {self.auto_score}: no better direction to rank by; choose one of {directed}")

    @property
    def auto_higher_is_better(self) -> bool:
        """Whether a larger auto-score wins."""
        return bool(HIGHER_IS_BETTER[self.auto_score])

    def criteria(self, campaign: Campaign) -> tuple[str, ...]:
        """The criteria to build pairs for: one, or all that the campaign's task asks."""
        asked = tuple(load_task(campaign).criteria)
        if self.criterion == "all":
            return asked
        if self.criterion not in asked:
            raise UserError(f"--criterion {self.criterion}: the campaign's task asks {', '.join(asked)}; "
                            "choose one of them, or all")
        return (self.criterion,)



def build_pairs(campaign: Campaign, options: BuildOptions) -> pa.Table:
    """All pairs as a PreferencePair table."""
    con = campaign.connect()
    # A marked score (no sync peak: SyncNet saw no sync to measure) neither makes nor flags a pair.
    con.execute(f"CREATE VIEW unmarked_scores AS SELECT * FROM scores WHERE {UNMARKED_SQL}")
    # Undone votes never count.
    votes = counted_view(con, campaign, "votes") if options.source in ("ab", "hybrid", "ranking") else None
    parts = []
    if options.source in ("ab", "hybrid"):
        parts.append(_ab_pairs(con, campaign, options, votes))
    if options.source == "ranking":
        parts.append(_ranking_pairs(con, campaign, options, votes))
    if options.source == "rating":
        parts.append(_rating_pairs(con, campaign, options))
    if options.source in ("auto", "hybrid"):
        _require_score(con, options.auto_score)
        parts.append(_auto_pairs(con, options, votes))
    con.register("raw", pa.concat_tables(parts) if parts else _empty_raw())
    con.register("heldout", pa.table({"condition_id": pa.array(sorted(heldout_conditions(
        [c for c, in con.execute("SELECT DISTINCT condition_id FROM raw").fetchall()], options.heldout,
        options.seed)), pa.string())}))
    con.register("pair_marks", vote_marks(campaign, con, votes))
    scorer, _, metric = options.auto_score.partition("/")
    better = ">" if options.auto_higher_is_better else "<"
    table = con.sql(f"""
        WITH paired AS (
            SELECT chosen AS clip FROM raw UNION SELECT rejected FROM raw
        ), clip_scores AS (  -- json.dumps(…, sort_keys=True) of a clip's scores, made once per clip
            SELECT clip, to_json(map(list(scorer || '/' || metric ORDER BY scorer || '/' || metric),
                                     list(value ORDER BY scorer || '/' || metric)))::VARCHAR AS scores
            FROM unmarked_scores WHERE value IS NOT NULL AND clip IN (SELECT clip FROM paired) GROUP BY clip
        ), deciding AS (
            SELECT clip, value FROM unmarked_scores WHERE scorer = ? AND metric = ? AND value IS NOT NULL
        )
        SELECT left(sha256(concat_ws('|', r.condition_id, r.chosen, r.rejected, r.criterion, r.source)), 20)
                   AS pair_id,
               r.condition_id, r.chosen, r.rejected, r.criterion, r.source, r.margin, r.votes, r.agreement,
               CASE WHEN h.condition_id IS NULL THEN 'train' ELSE 'heldout' END AS split, r.annotators,
               coalesce(cs.scores, '{{}}') AS chosen_scores, coalesce(rs.scores, '{{}}') AS rejected_scores,
               -- marks come with votes: an auto pair has none
               coalesce(CASE WHEN r.source IN ('human', 'ranking') THEN mc.spans END, []) AS chosen_marks,
               coalesce(CASE WHEN r.source IN ('human', 'ranking') THEN mr.spans END, []) AS rejected_marks,
               CASE WHEN r.source = 'auto' OR dc.value IS NULL OR dr.value IS NULL THEN NULL
                    ELSE NOT (dc.value {better} dr.value) END AS scores_disagree
        FROM raw r
        LEFT JOIN heldout h ON h.condition_id = r.condition_id
        LEFT JOIN clip_scores cs ON cs.clip = r.chosen LEFT JOIN clip_scores rs ON rs.clip = r.rejected
        LEFT JOIN deciding dc ON dc.clip = r.chosen LEFT JOIN deciding dr ON dr.clip = r.rejected
        LEFT JOIN pair_marks mc ON mc.clip_a = least(r.chosen, r.rejected) AND mc.clip_b = greatest(r.chosen, r.rejected)
                               AND mc.criterion = r.criterion AND mc.clip = r.chosen
        LEFT JOIN pair_marks mr ON mr.clip_a = least(r.chosen, r.rejected) AND mr.clip_b = greatest(r.chosen, r.rejected)
                               AND mr.criterion = r.criterion AND mr.clip = r.rejected
        ORDER BY r.condition_id, r.criterion, r.chosen, r.rejected
    """, params=[scorer, metric]).to_arrow_table()
    return conform(table, PreferencePair, "pairs")


def _require_score(con: duckdb.DuckDBPyConnection, score: str) -> None:
    present = [r[0] for r in con.execute(
        "SELECT DISTINCT scorer || '/' || metric FROM unmarked_scores WHERE value IS NOT NULL ORDER BY 1").fetchall()]
    marked = con.execute("SELECT count(*) FROM scores WHERE scorer || '/' || metric = ? AND value IS NOT NULL",
                         [score]).fetchall()[0][0]
    if score not in present and marked:
        raise UserError(f"--auto-score {score}: all {marked} such scores are marked (no sync peak) and rank nothing; "
                        "rescore with other weights (pairs score --syncnet-weights PATH) or choose another score")
    if score not in present:
        raise UserError(f"--auto-score {score}: the campaign has no such scores; run `pairs score` or choose one of "
                        f"{', '.join(present) or '(none yet)'}")


def _empty_raw() -> pa.Table:
    return pa.table({
        "condition_id": pa.array([], pa.string()), "chosen": pa.array([], pa.string()),
        "rejected": pa.array([], pa.string()), "criterion": pa.array([], pa.string()),
        "source": pa.array([], pa.string()), "margin": pa.array([], pa.float64()),
        "votes": pa.array([], pa.int64()), "agreement": pa.array([], pa.float64()),
        "annotators": pa.array([], pa.list_(pa.string())),
    })


def _weights(campaign: Campaign, con: duckdb.DuckDBPyConnection, votes_view: str,
             options: BuildOptions) -> pa.Table | None:
    if options.weighting == "none":
        return None
    votes = con.sql(f"SELECT * FROM {votes_view}").to_arrow_table()  # the weight fits read every vote
    if options.weighting == "gold":
        gold = gold_answers([i for i in ab_items(campaign, tuple(load_task(campaign).criteria)) if i.is_gold])
        return gold_weights(votes, gold)
    if options.weighting == "dawid-skene":
        return dawid_skene(votes)
    return None


def _asked_decisions(con: duckdb.DuckDBPyConnection, campaign: Campaign, options: BuildOptions,
                     votes: str) -> list[str]:
    """Make view `decisions` of the asked criteria's counted votes, weighted; returns the criteria."""
    criteria = list(options.criteria(campaign))
    weights = _weights(campaign, con, votes, options)
    # Each (pair, criterion) is decided on its own votes: the criteria not asked for need not be read.
    con.register("asked", pa.table({"criterion": pa.array(criteria, pa.string())}))
    con.execute(f"CREATE OR REPLACE VIEW asked_votes AS SELECT * FROM {votes} WHERE criterion IN (SELECT criterion "
                "FROM asked)")
    decisions_view(con, "asked_votes", weights, options.ties)
    return criteria


def _ranking_pairs(con: duckdb.DuckDBPyConnection, campaign: Campaign, options: BuildOptions,
                   votes: str) -> pa.Table:
    criteria = _asked_decisions(con, campaign, options, votes)
    prior = prior_scores(campaign, tuple(criteria)) if options.ranking_prior == "auto" else {}
    return ranking_pairs(con, criteria, prior, options.min_votes, options.min_confidence)


def _ab_pairs(con: duckdb.DuckDBPyConnection, campaign: Campaign, options: BuildOptions,
              votes: str) -> pa.Table:
    criteria = _asked_decisions(con, campaign, options, votes)
    return con.sql("""
        SELECT condition_id,
               CASE winner WHEN 'a' THEN clip_a ELSE clip_b END AS chosen,
               CASE winner WHEN 'a' THEN clip_b ELSE clip_a END AS rejected,
               criterion, 'human' AS source, margin::DOUBLE AS margin, votes::BIGINT AS votes,
               agreement::DOUBLE AS agreement, annotators::VARCHAR[] AS annotators
        FROM decisions
        WHERE winner IS NOT NULL AND votes >= ? AND agreement >= ? AND list_contains(?, criterion)
    """, params=[options.min_votes, options.min_agreement, criteria]).to_arrow_table()


def _rating_pairs(con: duckdb.DuckDBPyConnection, campaign: Campaign, options: BuildOptions) -> pa.Table:
    ratings = counted_view(con, campaign, "ratings")
    criteria = list(options.criteria(campaign))
    # Hallo4's r: the mean of a clip's criteria, for clips rated on at least two of the chosen ones.
    combined = ("UNION ALL SELECT condition_id, clip, 'mean', avg(mean), min(n), flatten(list(who)) FROM per_clip "
                "GROUP BY condition_id, clip HAVING count(*) > 1") if len(criteria) > 1 else ""
    params = [criteria, options.min_votes, options.min_gap]
    return con.sql(f"""
        WITH per_clip AS (
            SELECT condition_id, clip, criterion, avg(score) AS mean, count(*) AS n,
                   list(DISTINCT annotator ORDER BY annotator) AS who
            FROM {ratings} WHERE score IS NOT NULL AND list_contains(?, criterion)
            GROUP BY condition_id, clip, criterion HAVING count(*) >= ?
        ), scored AS (
            SELECT condition_id, clip, criterion, mean, n, who FROM per_clip {combined}
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY condition_id, criterion ORDER BY mean DESC, clip) AS best,
                      row_number() OVER (PARTITION BY condition_id, criterion ORDER BY mean ASC, clip) AS worst,
                      count(*) OVER (PARTITION BY condition_id, criterion) AS clips
            FROM scored
        )
        SELECT b.condition_id, b.clip AS chosen, w.clip AS rejected, b.criterion, 'human' AS source,
               (b.mean - w.mean)::DOUBLE AS margin, (b.n + w.n)::BIGINT AS votes, 1.0::DOUBLE AS agreement,
               list_sort(list_distinct(list_concat(b.who, w.who)))::VARCHAR[] AS annotators
        FROM ranked b JOIN ranked w ON b.condition_id = w.condition_id AND b.criterion = w.criterion
        WHERE b.best = 1 AND w.worst = 1 AND b.clips >= 2 AND b.mean - w.mean >= ? AND b.mean > w.mean
    """, params=params).to_arrow_table()


def _auto_pairs(con: duckdb.DuckDBPyConnection, options: BuildOptions, votes: str | None) -> pa.Table:
    scorer, _, metric = options.auto_score.partition("/")
    if options.criterion == "all":
        raise UserError("--criterion all: auto pairs stand for one criterion; name it, e.g. --criterion lip_sync")
    voted = f"SELECT DISTINCT clip_a, clip_b FROM {votes}" if votes else "SELECT NULL AS clip_a, NULL AS clip_b LIMIT 0"
    con.execute(f"CREATE OR REPLACE VIEW voted AS {voted}")
    sign = 1.0 if options.auto_higher_is_better else -1.0
    return con.sql("""
        WITH s AS (
            SELECT c.condition_id, s.clip, ? * s.value AS value
            FROM unmarked_scores s JOIN clips c ON c.sha256 = s.clip
            WHERE s.scorer = ? AND s.metric = ? AND s.value IS NOT NULL
        )
        SELECT x.condition_id, x.clip AS chosen, y.clip AS rejected, ? AS criterion, 'auto' AS source,
               (x.value - y.value)::DOUBLE AS margin, 0::BIGINT AS votes, 1.0::DOUBLE AS agreement,
               []::VARCHAR[] AS annotators
        FROM s x JOIN s y ON x.condition_id = y.condition_id AND x.value > y.value
        WHERE x.value - y.value >= ?
          AND NOT EXISTS (SELECT 1 FROM voted v WHERE v.clip_a = least(x.clip, y.clip)
                                                  AND v.clip_b = greatest(x.clip, y.clip))
    """, params=[sign, scorer, metric, options.criterion, options.min_gap]).to_arrow_table()


def heldout_conditions(conditions: list[str], share: float, seed: int) -> set[str]:
    """The conditions held out: the first round(share·n) in an order fixed by (seed, condition id)."""
    ordered = sorted(set(conditions), key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    return set(ordered[: round(share * len(ordered))])

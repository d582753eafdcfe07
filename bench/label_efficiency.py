"""Votes needed for correct pair decisions: round-robin vs active assignment, on simulated annotators.

A synthetic catalog in memory: conditions of the embedded world (`world.build.make_condition`: the
mouth opening its audio calls for), each with candidates rendered with the world's degradations at
random severities (`shift`: the mouth lags by k frames; `frozen_mouth`: the mouth blended towards
closed by a share f; `jitter`: head shake of s px), as a generator's candidates differ.

- **Ground truth** per criterion comes from how each clip was rendered: lip sync = the true mouth–audio
  agreement (R² of the clip's mouth against the mouth the audio calls for), expression = −f, motion = −s,
  overall = their weighted sum, each in just-noticeable differences (JND).
- **Annotators** see that truth through Thurstone noise of their own (sd 0.7–1.6 JND), answer at random
  when inattentive (2–10 % of showings), and say tie when the difference they perceive is under 0.25 JND.
- **Auto-scores** (the prior of active assignment, per PRIOR_SCORES) do *not* see the truth: the sync
  and expression scores are the landmark scorer's `mouth_audio_agreement` on noisy landmarks, a correlation
  blind to a half-frozen mouth; the expression score's at the best lag within ±2 frames (blind to small
  shifts too), the sync score's at offset 0 (as `sync/lse_c_at_0` is SyncNet's confidence at offset 0) with
  measurement noise on top; the jitter score is the jitter plus noise.
- **The campaign** is what `annotate serve` runs with the task's defaults (`AnnotationTask()`: overlap 3
  distinct annotators per pair, gold rate 0.1, 3 practice items), built by the server's own
  `task_assigner`; only `assign` differs. Round-robin is the server's: every pair gets one vote before any
  gets a second, and no pair more than `overlap`. The catalog holds a generator's candidates only, so it
  has no gold items (world in-sync vs degraded): gold rate and practice cost nothing here; in a campaign
  with gold controls both strategies spend the same share of showings on them.
- A **pair decision** (clip pair × criterion whose true gap is at least 0.5 JND, so a decision can be
  right) is the order of the Bradley–Terry posterior fitted with the same prior to the votes so far, for
  both strategies (what the admin console ranks): only what is asked differs. Counted are the showings
  (one vote answers every criterion) until 90 % (and 95 %) of decisions are right, checked every 5 votes.
- **What `pairs build` would export** is measured too: it exports no posterior order, only the voted
  pairs' majority (`pairs.preferences.aggregate.vote_decisions` with its defaults: ties dropped, one vote
  enough), so a pair nobody was asked gives no training pair however sure the posterior is. Printed are
  its decisions when the posterior reaches each target, and the showings until it decides 80 % of the
  decidable pairs rightly (90 % it reaches only near the end of the campaign, if at all).
- **`pairs build --from ranking`** exports every pair whose order the posterior fitted to the counted votes is
  sure of (its defaults: `--min-confidence 0.9`, or the one given here; at least one vote in the condition),
  with the auto-score prior (its default) and with `--ranking-prior none`; run through its own code
  (`pairs.preferences.ranking` over the `decisions` view that `pairs build` makes). Printed are the showings
  until it decides 80 % and 90 % of the decidable pairs rightly, for both strategies, and the share of its
  decisions (on decidable pairs) that are right then. At 0.9 it is sure of few pairs before the campaign ends.
- **`--clairvoyant`** adds a bound, not a strategy: an assigner told the truth, which asks the pair on which the
  posterior's decisions are wrong now for the most criteria. What it saves is what knowing where the posterior
  errs would be worth; round-robin and active have to find that out by voting.
- `--noise` and `--lapse` set the ranges annotators are drawn from (`--noise 0 0 --lapse 0 0`: annotators who
  see the truth exactly, which shows what is left of the gap when no vote is ever wrong).

    python -m bench.label_efficiency [--seeds 10] [--conditions 12] [--candidates 6] [--overlap 3]
        [--min-confidence 0.9] [--noise 0.7 1.6] [--lapse 0.02 0.1] [--clairvoyant]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pyarrow as pa

from annotate.assignment import Assigner, task_assigner
from annotate.preference_posterior import PreferencePosteriors
from campaign.items import Item
from data_schemas import AnnotationTask
from data_schemas.constants import CRITERIA
from pairs.preferences.aggregate import decisions_view, vote_decisions
from pairs.preferences.bradley_terry import PRIOR_SCORES, signed_prior
from pairs.preferences.build import BuildOptions
from pairs.preferences.ranking import ranking_pairs
from pairs.scoring.landmark_scores import mouth_audio_agreement
from world.build import make_condition

JND = {"lip_sync": 0.4, "expression": 0.15, "motion": 0.3}  # truth units per just-noticeable difference
TARGET = 0.9  # the share of right decisions votes_ratio is measured at
TARGETS = (TARGET, 0.95)
EXPORT_TARGETS = (0.8, 0.9)  # shares of decidable pairs that `pairs build` must decide rightly
EXPORTS = ("ab", "ranking", "ranking-none")  # --from ab; --from ranking with its default prior; --ranking-prior none
MIN_GAP = 0.5  # JND: pairs closer than this have no answer a decision could get right
CLAIRVOYANT = "clairvoyant"  # the bound --clairvoyant adds: an assigner told which decisions are wrong
NOISE = (0.7, 1.6)  # JND: the range of annotators' Thurstone noise (sd)
LAPSE = (0.02, 0.10)  # the range of annotators' shares of random answers


@dataclass(frozen=True)
class Catalog:
    """Items to judge, each clip's true quality per criterion (JND units) and its auto-scores."""

    items: list[Item]
    truth: dict[str, dict[str, float]]  # criterion → clip → quality
    auto: dict[str, dict[str, float]]  # scorer/metric → clip → value


def _lagged(track: np.ndarray, lag: int) -> np.ndarray:
    return np.concatenate([np.full(lag, track[0]), track])[: len(track)] if lag else track


def synthetic_catalog(conditions: int, candidates: int, rng: np.random.Generator, world_seed: int) -> Catalog:
    """`conditions` world conditions × `candidates` clips with random degradations, their truth and auto-scores."""
    items, truth, auto = [], {c: {} for c in CRITERIA}, {s: {} for s in set(PRIOR_SCORES.values())}
    for index in range(conditions):
        condition = make_condition(world_seed, index, size=32)
        wanted = condition.mouth
        clips = []
        for k in range(candidates):
            clip = f"{condition.condition_id}-{k}"
            shift = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
            frozen = float(rng.uniform(0, 0.6)) if rng.random() < 0.4 else 0.0
            jitter = float(rng.uniform(0, 1.5)) if rng.random() < 0.5 else 0.0
            mouth = (1 - frozen) * _lagged(wanted, shift) + frozen * 0.05
            agreement = 1 - np.sum((mouth - wanted) ** 2) / np.sum((wanted - wanted.mean()) ** 2)
            q = {"lip_sync": agreement / JND["lip_sync"], "expression": -frozen / JND["expression"],
                 "motion": -jitter / JND["motion"]}
            q["overall"] = (q["lip_sync"] + 0.5 * q["expression"] + 0.5 * q["motion"]) / 1.5
            for criterion in CRITERIA:
                truth[criterion][clip] = float(q[criterion])
            seen = mouth + rng.normal(0, 0.03, len(mouth))  # landmarks are not exact
            auto["sync/lse_c_at_0"][clip] = mouth_audio_agreement(seen, wanted, max_lag=0) + float(rng.normal(0, 0.05))
            other_landmarks = seen + rng.normal(0, 0.03, len(mouth))
            auto["expression/mouth_audio"][clip] = mouth_audio_agreement(other_landmarks, wanted)
            auto["motion/jitter"][clip] = jitter + float(rng.normal(0, 0.4))
            clips.append(clip)
        items += [Item(f"{a}-{b}", condition.condition_id, a, b) for i, a in enumerate(clips) for b in clips[i + 1:]]
    return Catalog(items, truth, auto)


def prior_of(catalog: Catalog) -> dict[str, dict[str, float]]:
    """criterion → clip → signed auto-score: what active assignment reads from a campaign's scores."""
    return signed_prior(catalog.auto, CRITERIA)


class Annotator:
    """Perceives the truth with Thurstone noise of its own, lapses now and then, says tie when unsure."""

    def __init__(self, rng: np.random.Generator, noise: tuple[float, float] = NOISE,
                 lapse: tuple[float, float] = LAPSE) -> None:
        self.rng = rng
        self.noise = rng.uniform(*noise)
        self.lapse = rng.uniform(*lapse)

    def answer(self, item: Item, truth: dict[str, dict[str, float]]) -> dict[str, str]:
        """a / b / tie per criterion."""
        if self.rng.random() < self.lapse:
            return {c: str(self.rng.choice(["a", "b"])) for c in CRITERIA}
        answers = {}
        for criterion in CRITERIA:
            seen = truth[criterion][item.clip_a] - truth[criterion][item.clip_b] + self.rng.normal(0, self.noise)
            answers[criterion] = "tie" if abs(seen) < 0.25 else ("a" if seen > 0 else "b")
        return answers


def decidable(catalog: Catalog) -> list[tuple[Item, str, bool]]:
    """(item, criterion, clip_a truly better) for every pair whose true gap a decision can get right."""
    return [(item, c, catalog.truth[c][item.clip_a] > catalog.truth[c][item.clip_b]) for item in catalog.items
            for c in CRITERIA if abs(catalog.truth[c][item.clip_a] - catalog.truth[c][item.clip_b]) >= MIN_GAP]


def share_correct(posteriors: PreferencePosteriors, scored: list[tuple[Item, str, bool]]) -> float:
    """Share of pair decisions (the posterior's order) that match the truth."""
    right = sum((posteriors.prefers(item.condition_id, c, item.clip_a, item.clip_b) > 0.5) == a_better
                for item, c, a_better in scored)
    return right / len(scored)


class Clairvoyant(Assigner):
    """Not a strategy, a bound: told the truth, it asks the pair on which the posterior's decisions are wrong now
    for the most criteria (then by the largest true gaps), so no vote goes where the posterior is right already.
    No campaign knows which of its decisions are wrong; its votes say what knowing that would be worth."""

    def __init__(self, catalog: Catalog, task: AnnotationTask, judge: PreferencePosteriors, seed: int) -> None:
        super().__init__(catalog.items, task.overlap, task.gold_rate, seed, task.practice)
        self.judge = judge
        self.scored: dict[str, list[tuple[str, bool, float]]] = {}  # item → (criterion, clip_a better, true gap)
        for item, criterion, a_better in decidable(catalog):
            gap = abs(catalog.truth[criterion][item.clip_a] - catalog.truth[criterion][item.clip_b])
            self.scored.setdefault(item.item_id, []).append((criterion, a_better, gap))

    def _wrong(self, item: Item) -> tuple[int, float]:
        wrong = [gap for criterion, a_better, gap in self.scored.get(item.item_id, ())
                 if (self.judge.prefers(item.condition_id, criterion, item.clip_a, item.clip_b) > 0.5) != a_better]
        return len(wrong), sum(wrong)

    def _pick(self, annotator: str) -> Item | None:
        available = [self.regular[k] for k in np.flatnonzero(self._available(annotator)[1])]
        return max(available, key=self._wrong, default=None)


@dataclass(frozen=True)
class Reached:
    """When a strategy first had `target` of the decisions right, and what `pairs build` would export then."""

    votes: int | None  # showings; None: not within the campaign's overlap × pairs
    decidable: int  # pair × criterion a decision can get right
    exported: int = 0  # decidable pair × criterion that the voted pairs' majority decides
    exported_right: int = 0  # … and decides right


def exported_decisions(votes: pa.Table, scored: list[tuple[Item, str, bool]]) -> tuple[int, int]:
    """(decided, decided right) among the decidable pair × criterion by `pairs build --from ab --criterion all`'s
    decisions: the majority of each voted pair, ties dropped."""
    if votes.num_rows == 0:
        return 0, 0
    decisions = vote_decisions(votes).to_pylist()
    winner = {(d["clip_a"], d["clip_b"], d["criterion"]): d["winner"] for d in decisions if d["winner"]}
    said = [(winner.get((item.clip_a, item.clip_b, c)), "a" if a_better else "b") for item, c, a_better in scored]
    return sum(w is not None for w, _ in said), sum(w == truth for w, truth in said)


def ranked_decisions(votes: pa.Table, scored: list[tuple[Item, str, bool]], catalog: Catalog,
                     prior: dict[str, dict[str, float]], min_confidence: float | None = None) -> tuple[int, int]:
    """(decided, decided right) among the decidable pair × criterion by `pairs build --from ranking --criterion
    all` with its defaults (or this `--min-confidence`), `prior` the signed auto-scores ({} for
    `--ranking-prior none`)."""
    if votes.num_rows == 0:
        return 0, 0
    defaults = BuildOptions() if min_confidence is None else BuildOptions(min_confidence=min_confidence)
    con = duckdb.connect()  # what build_pairs has made by then: the counted votes' decisions, the clips
    con.register("votes", votes)
    decisions_view(con, "votes", None, defaults.ties)
    conditions = clips_by_condition(catalog)
    con.register("clips", pa.table({"condition_id": [c for c, clips in conditions.items() for _ in clips],
                                    "sha256": [clip for clips in conditions.values() for clip in clips]}))
    pairs = ranking_pairs(con, list(CRITERIA), prior, defaults.min_votes, defaults.min_confidence)
    winner = {(min(c, r), max(c, r), k): c for c, r, k in zip(*pairs.select(["chosen", "rejected", "criterion"])
                                                                .to_pydict().values())}
    said = [(winner.get((min(item.clip_a, item.clip_b), max(item.clip_a, item.clip_b), c)),
             item.clip_a if a_better else item.clip_b) for item, c, a_better in scored]
    return sum(w is not None for w, _ in said), sum(w == truth for w, truth in said)


def votes_to_targets(strategy: str, catalog: Catalog, task: AnnotationTask, annotators: int, seed: int,
                     every: int, min_confidence: float | None = None,
                     noise: tuple[float, float] = NOISE, lapse: tuple[float, float] = LAPSE
                     ) -> tuple[dict[float, Reached], dict[str, dict[float, Reached]]]:
    """For each of TARGETS: showings until that share of decisions is right, and what would be exported then;
    and for each of EXPORTS and EXPORT_TARGETS the showings until `pairs build` decides that share of the
    decidable pairs rightly, and what it exports then (votes None: never). `strategy` is a task's `assign`, or
    CLAIRVOYANT."""
    prior = prior_of(catalog)
    judge = PreferencePosteriors(clips_by_condition(catalog), CRITERIA, prior)
    assigner = (Clairvoyant(catalog, task, judge, seed) if strategy == CLAIRVOYANT
                else task_assigner(replace(task, assign=strategy), catalog.items, prior, seed))
    scored = decidable(catalog)
    rng = np.random.default_rng([seed, 99])  # the same annotators for every strategy
    people = [(f"ann-{n:02d}", Annotator(rng, noise, lapse)) for n in range(annotators)]
    reached: dict[float, Reached] = {}
    votes: list[dict] = []  # the votes table's columns that decisions read
    shown, exported = 0, {name: {} for name in EXPORTS}
    deciders = {"ab": lambda table: exported_decisions(table, scored),
                "ranking": lambda table: ranked_decisions(table, scored, catalog, prior, min_confidence),
                "ranking-none": lambda table: ranked_decisions(table, scored, catalog, {}, min_confidence)}

    def check() -> bool:
        right = share_correct(judge, scored)
        table = pa.Table.from_pylist(votes)  # once per check, for every decider
        for target in TARGETS:
            if target not in reached and right >= target:
                reached[target] = Reached(shown, len(scored), *exported_decisions(table, scored))
        for name, decide in deciders.items():
            if len(exported[name]) < len(EXPORT_TARGETS):
                decided, rightly = decide(table)
                exported[name].update({t: Reached(shown, len(scored), decided, rightly) for t in EXPORT_TARGETS
                                       if t not in exported[name] and rightly >= t * len(scored)})
        return len(reached) == len(TARGETS) and all(len(e) == len(EXPORT_TARGETS) for e in exported.values())

    idle = 0
    done = check()
    while idle < len(people) and not done:
        idle = 0
        for name, person in people:
            item = assigner.next_item(name)
            if item is None:
                idle += 1
                continue
            answers = person.answer(item, catalog.truth)
            assigner.record(name, item.item_id, False, answers)
            judge.add(item.condition_id, item.clip_a, item.clip_b, answers)
            votes += [{"condition_id": item.condition_id, "clip_a": item.clip_a, "clip_b": item.clip_b,
                       "criterion": c, "annotator": name, "choice": choice} for c, choice in answers.items()]
            shown += 1
            if shown % every == 0 and (done := check()):
                break
    if not done:  # the campaign ran out between two checks: its last votes count too
        check()
    return ({target: reached.get(target, Reached(None, len(scored))) for target in TARGETS},
            {name: {t: at.get(t, Reached(None, len(scored))) for t in EXPORT_TARGETS} for name, at in exported.items()})


def clips_by_condition(catalog: Catalog) -> dict[str, list[str]]:
    """condition → its clips."""
    clips: dict[str, set[str]] = {}
    for item in catalog.items:
        clips.setdefault(item.condition_id, set()).update((item.clip_a, item.clip_b))
    return {c: sorted(v) for c, v in clips.items()}


def mean_votes(reached: list[Reached]) -> float:
    """Mean showings to a target over seeds (every seed reached it)."""
    return float(np.mean([at.votes for at in reached]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--conditions", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--overlap", type=int, default=AnnotationTask().overlap,
                        help="distinct annotators per pair (default: the task's default)")
    parser.add_argument("--every", type=int, default=5, help="check the decisions every N votes")
    parser.add_argument("--min-confidence", type=float, default=BuildOptions().min_confidence,
                        help="pairs build --from ranking's (default: its default)")
    parser.add_argument("--noise", type=float, nargs=2, default=NOISE, metavar=("LOW", "HIGH"),
                        help="range of the annotators' Thurstone noise sd, in JND (default: %(default)s)")
    parser.add_argument("--lapse", type=float, nargs=2, default=LAPSE, metavar=("LOW", "HIGH"),
                        help="range of the annotators' shares of random answers (default: %(default)s)")
    parser.add_argument("--clairvoyant", action="store_true",
                        help="also run an assigner told which decisions are wrong: a bound, not a strategy")
    args = parser.parse_args()
    task = AnnotationTask(overlap=args.overlap)
    started = time.perf_counter()
    strategies = ("round-robin", "active")
    needed: dict[str, dict[float, list[Reached]]] = {s: {t: [] for t in TARGETS}
                                                     for s in strategies + (CLAIRVOYANT,) * args.clairvoyant}
    exporting: dict[str, list[dict[str, dict[float, Reached]]]] = {s: [] for s in needed}
    for seed in range(args.seeds):
        catalog = synthetic_catalog(args.conditions, args.candidates, np.random.default_rng(seed), world_seed=seed)
        scored = decidable(catalog)
        prior_right = share_correct(PreferencePosteriors(clips_by_condition(catalog), CRITERIA, prior_of(catalog)),
                                    scored)
        line = [f"seed {seed}: {len(catalog.items)} pairs, {len(scored)} decidable pair×criterion, "
                f"auto-score prior alone {prior_right:.0%} right"]
        for strategy, by_target in needed.items():
            reached, export_votes = votes_to_targets(strategy, catalog, task, args.annotators, seed, args.every,
                                                     args.min_confidence, tuple(args.noise), tuple(args.lapse))
            for target, at in reached.items():
                by_target[target].append(at)
            exporting[strategy].append(export_votes)
            line.append(f"{strategy} " + ", ".join(
                f"{'-' if at.votes is None else at.votes} votes to {t:.0%}" for t, at in reached.items())
                + "; until pairs build is right on " + ", ".join(
                    f"{t:.0%} ({name}) {'-' if r.votes is None else r.votes}" for name, at in export_votes.items()
                    for t, r in at.items()))
        print("; ".join(line), flush=True)
    for target in TARGETS:
        if any(at.votes is None for s in strategies for at in needed[s][target]):
            print(f"{target:.0%}: not reached on every seed within overlap {args.overlap}")
            if target == TARGET:
                raise SystemExit(f"raise --overlap: {TARGET:.0%} was not reached on every seed")
            continue
        mean = {s: mean_votes(by_target[target]) for s, by_target in needed.items()
                if all(at.votes is not None for at in by_target[target])}
        per_seed = [r.votes / a.votes for r, a in zip(needed["round-robin"][target], needed["active"][target])]
        rr, active = mean["round-robin"], mean["active"]
        print(f"mean votes to {target:.0%} correct pair decisions over {args.seeds} seeds: round-robin "
              f"{rr:.0f}, active {active:.0f}, ratio {rr / active:.2f} "
              f"(per seed {min(per_seed):.2f}–{max(per_seed):.2f}, median {np.median(per_seed):.2f})")
        if CLAIRVOYANT in mean:
            print(f"  an assigner told which decisions are wrong (a bound, not a strategy): {mean[CLAIRVOYANT]:.0f}, "
                  f"round-robin's ×{rr / mean[CLAIRVOYANT]:.2f}")
        for strategy, by_target in needed.items():
            at = by_target[target]
            decidable_total = sum(a.decidable for a in at)
            exported, right = sum(a.exported for a in at), sum(a.exported_right for a in at)
            print(f"  then pairs build (voted pairs' majority) decides {exported / decidable_total:.0%} of the "
                  f"decidable pair×criterion from {strategy}'s votes, {right / decidable_total:.0%} rightly "
                  f"({right / max(exported, 1):.0%} of its decisions right)")
    for name in EXPORTS:
        source = {"ab": "--from ab", "ranking": f"--from ranking --min-confidence {args.min_confidence:g}",
                  "ranking-none": f"--from ranking --min-confidence {args.min_confidence:g} --ranking-prior none"}[name]
        for target in EXPORT_TARGETS:
            at = {s: [run[name][target] for run in exporting[s]] for s in strategies}
            if any(r.votes is None for per_seed in at.values() for r in per_seed):
                reached = {s: sum(r.votes is not None for r in per_seed) for s, per_seed in at.items()}
                print(f"pairs build {source} did not decide {target:.0%} of the decidable pair×criterion rightly on "
                      f"every seed within overlap {args.overlap} (seeds reached: " +
                      ", ".join(f"{s} {n}/{args.seeds}" for s, n in reached.items()) + ")")
                continue
            rr, active = (mean_votes(at[s]) for s in strategies)
            right = {s: sum(r.exported_right for r in at[s]) / max(sum(r.exported for r in at[s]), 1)
                     for s in strategies}
            print(f"mean votes until pairs build {source} decides {target:.0%} of the decidable pair×criterion "
                  f"rightly: round-robin {rr:.0f}, active {active:.0f}, ratio {rr / active:.2f} (then "
                  + ", ".join(f"{right[s]:.0%} of {s}'s decisions right" for s in strategies) + ")")
    print(f"({time.perf_counter() - started:.0f} s)")
    print(f"votes_ratio={mean_votes(needed['round-robin'][TARGET]) / mean_votes(needed['active'][TARGET]):.2f}")


if __name__ == "__main__":
    main()

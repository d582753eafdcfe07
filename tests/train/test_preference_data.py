import pyarrow as pa
import pytest

from pairs.preferences.aggregate import vote_decisions
from train.preference_data import preference_probability


def test_vote_share_is_the_winners_share_of_decisive_votes_with_ties_half():
    # Pair x: a, a, tie, both_bad → for a 2.5, for b 0.5 → p = 2.5 / 3. Pair y: b, b, b, a → p = 0.75.
    choices = {"x": ["a", "a", "tie", "both_bad"], "y": ["b", "b", "b", "a"]}
    rows = [dict(condition_id="c", clip_a=f"{pair}1", clip_b=f"{pair}2", criterion="overall", annotator=f"u{n}",
                 choice=choice) for pair, votes in choices.items() for n, choice in enumerate(votes)]
    decisions = vote_decisions(pa.Table.from_pylist(rows), ties="half").to_pylist()
    part = {"source": ["human", "human", "auto"], "agreement": [d["agreement"] for d in decisions] + [1.0],
            "margin": [d["margin"] for d in decisions] + [0.3]}
    assert preference_probability(part) == pytest.approx([2.5 / 3, 0.75, 1.0])



def test_a_ranking_pair_is_labelled_with_the_posteriors_order_probability():
    # `pairs build --from ranking` puts the probability of the pair's order in `agreement` and the strength gap
    # (logits, not a vote share) in `margin`: the label is that probability, not 1 and not a vote share.
    part = {"source": ["ranking", "ranking"], "agreement": [0.93, 0.71], "margin": [2.6, 0.9]}
    assert preference_probability(part) == pytest.approx([0.93, 0.71])

def test_a_batch_of_a_causal_family_mixes_no_window_kinds():
    import numpy as np
    import torch

    from model_families.wan_audio import frame_timing
    from train.preference_data import PreferenceSet

    class Causal:  # the wan-audio clip rule: latent frame 0 is one video frame, later ones four
        time_aligned = ("audio",)
        usable_frames = staticmethod(frame_timing.usable_length)
        latent_frames = staticmethod(frame_timing.latent_frames)
        video_span = staticmethod(frame_timing.video_span)

    latents = {"w": torch.zeros(8, 1), "l": torch.zeros(8, 1)}  # 29 video frames
    data = PreferenceSet(["w"], ["l"], ["c"], torch.ones(1), latents, {"c": {"audio": torch.zeros(29, 2)}}, Causal())
    rows = {data.batch(np.random.default_rng(seed), 4, 9)[2]["audio"].shape[1] for seed in range(20)}
    assert rows == {9, 12}  # whole batches from frame 0 (4·3 − 3 rows) or from later frames (4·3 rows)

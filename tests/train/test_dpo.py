import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch

from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import export_pairs
from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from train.config import DPOConfig
from train.dpo import train_preferences
from model_families.embedded.family import EmbeddedFamily


@pytest.fixture
def exported(voted_campaign, tmp_path):  # noqa: F811 - the imported fixture
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.25, seed=1))
    export_pairs(voted_campaign, pairs, tmp_path / "dataset", embed_media=False, parquet=False)
    return tmp_path / "dataset"


def config(exported, model, out, **kwargs):
    return DPOConfig(dataset=str(exported), out=out, model=str(model), batch_size=2, window=8,
                     checkpoint_every=2, lr=1e-3, beta=50.0, **kwargs)


def test_dpo_step_changes_the_policy_only_and_leaves_a_loadable_model(exported, tiny_model_dir, tmp_path):
    before = EmbeddedFamily.load(tiny_model_dir).denoiser.state_dict()
    out = train_preferences(config(exported, tiny_model_dir, tmp_path / "run", steps=2))
    after = EmbeddedFamily.load(out).denoiser.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, EmbeddedFamily.load(tiny_model_dir).denoiser.state_dict()[k])
               for k, v in before.items())  # the reference (the input model) is untouched
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert {"loss", "rewards/accuracies", "rewards/margins", "errors/policy_chosen"} <= set(rows[0])
    assert (out / "checkpoints" / "step-2").is_dir()
    assert list((out / "dpo").rglob("events.out.tfevents.*"))  # TensorBoard, installed by the test extra


def test_resume_repeats_an_uninterrupted_run(exported, tiny_model_dir, tmp_path):
    train_preferences(config(exported, tiny_model_dir, tmp_path / "straight", steps=4))
    train_preferences(config(exported, tiny_model_dir, tmp_path / "resumed", steps=2))
    train_preferences(config(exported, tiny_model_dir, tmp_path / "resumed", steps=4, resume=True))

    def losses(run):
        return [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("resumed") == pytest.approx(losses("straight"), rel=1e-5)


def test_sft_trains_on_winners(exported, tiny_model_dir, tmp_path):
    out = train_preferences(config(exported, tiny_model_dir, tmp_path / "sft", steps=2), objective="sft")
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_bad_datasets_are_one_line_errors(exported, tiny_model_dir, tmp_path):
    data = datasets.load_from_disk(str(exported))
    data.remove_columns(["chosen_video"]).save_to_disk(str(tmp_path / "broken"), num_shards={s: 1 for s in data})
    train = str(Path(sys.executable).parent / "train")
    for dataset, message in ((tmp_path / "broken", "missing columns chosen_video"),
                             (tmp_path / "nowhere", "cannot load")):
        result = subprocess.run([train, "dpo", "--dataset", str(dataset), "--out", str(tmp_path / "o"), "--model",
                                 str(tiny_model_dir)], capture_output=True, text=True, timeout=120)
        errors = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr


@pytest.mark.parametrize("prediction_type", ["epsilon", "flow"])
def test_each_target_runs(exported, tmp_path, prediction_type):
    from tests.conftest import tiny_denoiser
    from model_families.targets import training_scheduler

    model = tmp_path / f"model-{prediction_type}"
    EmbeddedFamily(tiny_denoiser(), training_scheduler(prediction_type)).save(model, "# tiny\n")
    out = train_preferences(config(exported, model, tmp_path / "run", steps=1))
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert row["errors/policy_chosen"] > 0 and row["loss"] > 0
    assert EmbeddedFamily.load(out).scheduler.__class__.__name__ == (
        "FlowMatchEulerDiscreteScheduler" if prediction_type == "flow" else "DDPMScheduler")


def test_lora_keeps_one_copy_of_the_base_weights(exported, tiny_model_dir, tmp_path, monkeypatch):
    from model_families.embedded.denoiser import PortraitDenoiser

    def no_copies(self, memo):
        raise AssertionError("LoRA DPO must not copy the model")

    monkeypatch.setattr(PortraitDenoiser, "__deepcopy__", no_copies, raising=False)
    out = train_preferences(config(exported, tiny_model_dir, tmp_path / "lora", steps=3, lora_rank=4))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["errors/reference_chosen"] == pytest.approx(rows[0]["errors/policy_chosen"])  # adapters start at 0
    trained = EmbeddedFamily.load(out).denoiser
    assert not any("lora" in name for name, _ in trained.named_parameters())  # folded into plain weights
    base = EmbeddedFamily.load(tiny_model_dir).denoiser.state_dict()
    changed = {k for k, v in trained.state_dict().items() if not torch.equal(v, base[k])}
    assert changed and all(k.endswith(("conv1.weight", "conv2.weight", "to_q.weight", "to_k.weight", "to_v.weight",
                                       "to_out.0.weight")) for k in changed)


def test_accelerate_launch_runs_the_trainer_in_two_processes(exported, tiny_model_dir, tmp_path):
    launch = Path(sys.executable).parent / "accelerate"
    out = tmp_path / "launched"
    result = subprocess.run(
        [str(launch), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "train.cli", "dpo", "--dataset", str(exported), "--out", str(out),
         "--model", str(tiny_model_dir), "--steps", "2", "--batch-size", "2", "--window", "8",
         "--checkpoint-every", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # one line per step: only the main process writes
    assert EmbeddedFamily.load(out).denoiser is not None

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch

import train.dpo
from data_schemas import UserError
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import export_pairs
from tests.pairs.test_export import mark_losers, voted_campaign  # noqa: F401 - fixture
from train.config import DPOConfig
from train.dpo import train_preferences
from model_families.embedded.family import EmbeddedFamily
from model_families.registry import load_model


@pytest.fixture
def exported(voted_campaign, tmp_path):  # noqa: F811 - the imported fixture
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.25, seed=1))
    export_pairs(voted_campaign, pairs, tmp_path / "dataset", embed_media=False, parquet=False)
    return tmp_path / "dataset"


def config(exported, model, out, **kwargs):
    return DPOConfig(dataset=str(exported), out=out, model=str(model), batch_size=2, window=8,
                     checkpoint_every=2, lr=1e-3, beta=50.0, **kwargs)


def test_dpo_step_changes_the_policy_only_and_leaves_a_loadable_model(exported, tiny_model_dir, tmp_path,
                                                                      monkeypatch):
    norms = []  # the gradient norm the optimiser sees: clipped to --max-grad-norm
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.nn.utils.get_total_norm(grads).item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    before = EmbeddedFamily.load(tiny_model_dir).denoiser.state_dict()
    out = train_preferences(config(exported, tiny_model_dir, tmp_path / "run", steps=2, max_grad_norm=1e-3))
    after = EmbeddedFamily.load(out).denoiser.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, EmbeddedFamily.load(tiny_model_dir).denoiser.state_dict()[k])
               for k, v in before.items())  # the reference (the input model) is untouched
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert {"loss", "rewards/accuracies", "rewards/margins", "errors/policy_chosen", "grad_norm", "lr"} <= set(rows[0])
    assert len(norms) == 2 and max(norms) <= 1e-3 * 1.001 and all(r["grad_norm"] > 1e-3 for r in rows)
    assert (out / "checkpoints" / "step-2").is_dir()
    assert list((out / "dpo").rglob("events.out.tfevents.*"))  # TensorBoard, installed by the test extra


def test_dense_without_marks_trains_exactly_as_plain_dpo(exported, tiny_model_dir, tmp_path):
    plain = train_preferences(config(exported, tiny_model_dir, tmp_path / "plain", steps=2))
    dense = train_preferences(config(exported, tiny_model_dir, tmp_path / "dense", steps=2, dense=True))
    logged = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (plain, dense)]
    assert [r["loss"] for r in logged[0]] == [r["loss"] for r in logged[1]]  # identical, not merely close
    weights = [EmbeddedFamily.load(run).denoiser.state_dict() for run in (plain, dense)]
    assert all(torch.equal(v, weights[1][k]) for k, v in weights[0].items())


def test_dense_weighs_the_frames_marked_on_the_loser_more(voted_campaign, tiny_model_dir, tmp_path,  # noqa: F811
                                                          monkeypatch):
    # Every other latent frame (4 video frames = 0.16 s at 25 fps) of every loser is marked: any 2-frame window
    # holds one marked frame, u = (3, 1) with λ = 2, so w = (1.5, 0.5) in some order.
    spans = [(0.0, 0.16), (0.32, 0.48), (0.64, 0.8), (0.96, 1.12)]
    mark_losers(voted_campaign, {f"s{n}": spans for n in range(1, 9)})
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="lip_sync", heldout=0.0))
    export_pairs(voted_campaign, pairs, tmp_path / "dataset", embed_media=False, parquet=False)
    seen = []
    real = train.dpo.pair_errors

    def recording(family, denoiser, batch):
        seen.append(batch.frame_weights.cpu())
        return real(family, denoiser, batch)

    monkeypatch.setattr(train.dpo, "pair_errors", recording)
    run = train_preferences(config(tmp_path / "dataset", tiny_model_dir, tmp_path / "dense", steps=2, dense=True))
    monkeypatch.undo()
    plain = train_preferences(config(tmp_path / "dataset", tiny_model_dir, tmp_path / "plain", steps=2))
    rows = {tuple(row.tolist()) for weights in seen for row in weights}
    assert rows and rows <= {(1.5, 0.5), (0.5, 1.5)}
    dense_log, plain_log = ([json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
                            for out in (run, plain))
    # Same batches, other errors: the loser's error is the marked frames' more, so the update differs too.
    assert dense_log[0]["errors/policy_rejected"] != pytest.approx(plain_log[0]["errors/policy_rejected"], rel=1e-6)
    assert dense_log[1]["loss"] != pytest.approx(plain_log[1]["loss"], rel=1e-6)


def test_resume_repeats_an_uninterrupted_run(exported, tiny_model_dir, tmp_path):
    schedule = dict(warmup=1, lr_schedule="cosine", keep_checkpoints=1)
    train_preferences(config(exported, tiny_model_dir, tmp_path / "straight", steps=4, **schedule))
    train_preferences(config(exported, tiny_model_dir, tmp_path / "resumed", steps=2, **schedule))
    train_preferences(config(exported, tiny_model_dir, tmp_path / "resumed", steps=4, resume=True, **schedule))

    def logged(run, key):
        return [json.loads(line)[key] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert logged("resumed", "loss") == pytest.approx(logged("straight", "loss"), rel=1e-5)
    # warm-up over 1 step, then cosine decay to 0 at step 4: lr·[0, 1, ¾, ¼]; the schedule resumes with the run
    assert logged("resumed", "lr") == pytest.approx([0.0, 1e-3, 7.5e-4, 2.5e-4])
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()] == ["step-4"]  # older ones pruned


def test_sft_trains_on_winners(exported, tiny_model_dir, tmp_path):
    out = train_preferences(config(exported, tiny_model_dir, tmp_path / "sft", steps=2), objective="sft")
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_flow_dpo_needs_a_flow_matching_model(exported, tiny_model_dir, tmp_path):
    with pytest.raises(UserError, match="--loss flow-dpo: .* predicts v_prediction"):
        train_preferences(config(exported, tiny_model_dir, tmp_path / "run", steps=1, loss="flow-dpo"))


def test_bad_datasets_are_one_line_errors(exported, tiny_model_dir, tmp_path):
    data = datasets.load_from_disk(str(exported))
    data.remove_columns(["chosen_video"]).save_to_disk(str(tmp_path / "broken"), num_shards={s: 1 for s in data})
    train = str(Path(sys.executable).parent / "train")
    for dataset, message in ((tmp_path / "broken", "missing columns chosen_video"),
                             (tmp_path / "nowhere", "no such folder; give the folder `pairs export --to-hf` wrote")):
        result = subprocess.run([train, "dpo", "--dataset", str(dataset), "--out", str(tmp_path / "o"), "--model",
                                 str(tiny_model_dir)], capture_output=True, text=True, timeout=120)
        errors = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr
    from train.preference_data import load_split

    with pytest.raises(UserError, match="dataset_dict.json: a file; give the folder"):  # not looked up on the Hub
        load_split(str(exported / "dataset_dict.json"))
    with pytest.raises(UserError, match="pairs.parquet: no such folder"):
        load_split("runs/pairs.parquet")
    with pytest.raises(UserError, match="cannot load"):  # a Hub id with a dot is still looked up there
        load_split("lab/pairs.v2")


@pytest.mark.parametrize("prediction_type, loss", [("epsilon", "sigmoid"), ("flow", "flow-dpo")])
def test_each_target_runs(exported, tmp_path, prediction_type, loss):
    from tests.conftest import tiny_denoiser
    from model_families.targets import training_scheduler

    model = tmp_path / f"model-{prediction_type}"
    EmbeddedFamily(tiny_denoiser(), training_scheduler(prediction_type)).save(model, "# tiny\n")
    out = train_preferences(config(exported, model, tmp_path / "run", steps=1, loss=loss, labels="vote-share"))
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


def test_two_processes_repeat_the_one_process_run(exported, tmp_path):
    """DDP of the tiny wan-audio model on 2 CPU processes (gloo) draws the micro-batches one process draws with
    --grad-accum 2, so the loss curves match: within 1e-4 relative (all-reduce and accumulation add the same
    gradients in another order; measured: 1e-6)."""
    from model_families.wan_audio import init_model

    model = init_model("tiny", tmp_path / "wan")
    options = dict(steps=3, batch_size=1, window=9, checkpoint_every=3, lr=1e-3, beta=50.0)
    flags = [part for key, value in options.items() for part in (f"--{key.replace('_', '-')}", str(value))]
    out = tmp_path / "launched"
    with socket.socket() as probe:  # a free port: other test runs on this machine may launch too
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # accelerate's --cpu alone starts one process unless MPI is installed; its torchrun launcher with
    # ACCELERATE_USE_CPU starts 2 processes that join over gloo.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend",
         "no", "-m", "train.cli", "dpo", "--dataset", str(exported), "--out", str(out), "--model", str(model),
         *flags],
        capture_output=True, text=True, timeout=300, env={**os.environ, "ACCELERATE_USE_CPU": "true"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "× 2 processes" in (out / "model_card.md").read_text()
    single = train_preferences(DPOConfig(dataset=str(exported), out=tmp_path / "single", model=str(model),
                                         grad_accum=2, **options))

    def logged(run):
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert [r["step"] for r in logged(out)] == [1, 2, 3]  # one line per step: only the main process writes
    assert [r["loss"] for r in logged(out)] == pytest.approx([r["loss"] for r in logged(single)], rel=1e-4)
    assert load_model(out).name == "wan-audio"


@pytest.mark.parametrize("name, kind", [("multi_gpu", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"),
                                        ("deepspeed_zero3", "DEEPSPEED")])
def test_example_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(Path(__file__).parents[2] / "train" / "accelerate" / f"{name}.yaml"))
    assert str(config.distributed_type).endswith(kind) and config.mixed_precision == "bf16"
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_reshard_after_forward"] is True  # full shard
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-1])

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from campaign.store import Campaign

BIN = Path(sys.executable).parent

PLUGIN = textwrap.dedent('''
    """A user's own generator: a tiny diffusers UNet3DConditionModel sampled with DDIM."""
    import numpy as np
    import torch
    from diffusers import DDIMScheduler, UNet3DConditionModel

    torch.manual_seed(0)
    UNET = UNet3DConditionModel(
        sample_size=16, in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
        norm_num_groups=8, cross_attention_dim=8, attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
    ).eval()
    CALLS = []

    @torch.no_grad()
    def generate(inputs, seed):
        CALLS.append(seed)
        x = torch.randn(1, 3, inputs.frames, 16, 16, generator=torch.Generator().manual_seed(seed))
        loudness = float(np.sqrt(np.mean(inputs.audio ** 2)))
        context = torch.full((1, 2, 8), loudness)
        scheduler = DDIMScheduler(num_train_timesteps=1000)
        scheduler.set_timesteps(2)
        for t in scheduler.timesteps:
            x = scheduler.step(UNET(x, t, encoder_hidden_states=context).sample, t, x).prev_sample
        frames = (x[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5
        return frames.round().to(torch.uint8).numpy()

    def wrong_shape(inputs, seed):
        return np.zeros((inputs.frames, 16, 16), np.float32)

    def crashes(inputs, seed):
        raise RuntimeError("out of memory")
''')


def run(*args, env_path=None):
    env = None
    if env_path is not None:
        import os
        env = dict(os.environ, PYTHONPATH=str(env_path))
    return subprocess.run([str(BIN / "pairs"), *args], capture_output=True, text=True, timeout=300, env=env)


def test_generate_two_conditions_two_candidates_into_a_campaign(tiny_model_dir, tmp_path):
    campaign_dir = tmp_path / "campaign"
    result = run("generate", "--campaign", str(campaign_dir), "--conditions", "2", "--candidates", "2",
                 "--model", str(tiny_model_dir), "--steps", "2", "--seconds", "0.64", "--seed", "10")
    assert result.returncode == 0, result.stderr
    clips = Campaign.open(campaign_dir).table("clips").to_pylist()
    assert len(clips) == 4
    assert sorted((c["condition_id"], c["seed"]) for c in clips) == [("w0-0000", 10), ("w0-0000", 11),
                                                                       ("w0-0001", 10), ("w0-0001", 11)]
    for clip in clips:
        assert (clip["fps"], clip["frames"], clip["width"], clip["has_audio"]) == (25.0, 16, 32, True)
        assert clip["generator"] == "embedded" and len(clip["generator_version"]) == 12
        assert json.loads(clip["params"]) == {"steps": 2, "guidance": 2.0, "model": str(tiny_model_dir)}
    assert len({c["sha256"] for c in clips}) == 4  # distinct seeds give distinct clips
    assert Campaign.open(campaign_dir).table("conditions").num_rows == 2
    assert not list(campaign_dir.glob("generate-*"))  # staging is cleaned up


def test_generate_reuses_campaign_conditions_and_alternates_guidance(tiny_model_dir, tmp_path):
    campaign_dir = tmp_path / "campaign"
    common = ["--campaign", str(campaign_dir), "--model", str(tiny_model_dir), "--steps", "1", "--seconds", "0.32"]
    assert run("generate", "--conditions", "1", "--candidates", "1", *common).returncode == 0
    result = run("generate", "--conditions", "1", "--candidates", "2", "--seed", "5", "--guidance", "1.5,3",
                 *common)
    assert result.returncode == 0, result.stderr
    campaign = Campaign.open(campaign_dir)
    assert campaign.table("conditions").num_rows == 1
    params = {c["seed"]: json.loads(c["params"])["guidance"] for c in campaign.table("clips").to_pylist()}
    assert params == {0: 2.0, 5: 1.5, 6: 3.0}


def test_plugin_pipeline_with_a_tiny_unet3d(tmp_path):
    (tmp_path / "my_generator.py").write_text(PLUGIN)
    campaign_dir = tmp_path / "campaign"
    result = run("generate", "--campaign", str(campaign_dir), "--conditions", "2", "--candidates", "2",
                 "--seconds", "0.4", "--pipeline", "my_generator:generate", env_path=tmp_path)
    assert result.returncode == 0, result.stderr
    clips = Campaign.open(campaign_dir).table("clips").to_pylist()
    assert len(clips) == 4
    assert {(c["width"], c["frames"], c["generator"], c["generator_version"]) for c in clips} == {
        (16, 10, "generate", "my_generator:generate")}


def test_bad_pipelines_get_one_line_errors(tmp_path):
    (tmp_path / "my_generator.py").write_text(PLUGIN)
    cases = {
        "no_colon": "write it as module:callable",
        "no_such_module:generate": "cannot import no_such_module",
        "my_generator:missing": "has no callable 'missing'",
        "my_generator:wrong_shape": "expected a numpy uint8 array [frames, height, width, 3]",
        "my_generator:crashes": "failed on condition w0-0000 (RuntimeError: out of memory)",
    }
    for spec, message in cases.items():
        result = run("generate", "--campaign", str(tmp_path / "c"), "--conditions", "1", "--candidates", "1",
                     "--seconds", "0.2", "--pipeline", spec, env_path=tmp_path)
        errors = [line for line in result.stderr.splitlines() if line.startswith("pairs: error:")]
        assert result.returncode == 2, (spec, result.stderr)
        assert len(errors) == 1 and message in errors[0], (spec, result.stderr)
        assert "Traceback" not in result.stderr

import json
import re
import shutil

import pytest

from data_schemas import UserError
from model_families.embedded.family import EmbeddedFamily
from model_families.registry import load_model


def test_a_model_folder_loads_through_its_family_json(tiny_model_dir):
    assert json.loads((tiny_model_dir / "family.json").read_text()) == {"family": "embedded"}
    model = load_model(tiny_model_dir)
    assert isinstance(model, EmbeddedFamily) and model.size == 32


def test_folders_that_are_not_models_are_one_line_errors(tmp_path, tiny_model_dir):
    with pytest.raises(UserError, match="folder not found"):
        load_model(tmp_path / "nope")
    with pytest.raises(UserError, match="no family.json"):
        load_model(tmp_path)
    (tiny_model_dir / "family.json").write_text('{"family": "hallo9"}')
    with pytest.raises(UserError, match="unknown family 'hallo9'"):
        load_model(tiny_model_dir)
    (tiny_model_dir / "family.json").write_text("not json")
    with pytest.raises(UserError, match="not a family.json"):
        load_model(tiny_model_dir)


@pytest.mark.parametrize("damage, message", [
    (lambda m: shutil.rmtree(m / "scheduler"), "without scheduler/scheduler_config.json"),  # no Hub lookup
    (lambda m: (m / "denoiser" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage"), "cannot load"),
    (lambda m: (m / "denoiser" / "config.json").write_text('{"_class_name": "PortraitDenoiser", '),
     "cannot load this embedded model"),
    (lambda m: (m / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {**json.loads((m / "scheduler" / "scheduler_config.json").read_text()), "prediction_type": "banana"})),
     "prediction_type 'banana'"),
    (lambda m: (m / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {**json.loads((m / "scheduler" / "scheduler_config.json").read_text()), "prediction_type": "flow"})),
     "prediction_type 'flow'"),  # flow matching is its own scheduler's, not a DDPM prediction type
])
def test_a_broken_embedded_folder_is_one_user_error(tiny_model_dir, damage, message):
    damage(tiny_model_dir)
    with pytest.raises(UserError, match=re.escape(message)):
        load_model(tiny_model_dir)


def test_an_installed_package_adds_a_family_through_its_entry_point(tmp_path, tiny_model_dir, monkeypatch):
    (tmp_path / "lab_family.py").write_text(
        "from model_families.embedded.family import EmbeddedFamily\n\n"
        "class LabFamily(EmbeddedFamily):\n    name = 'lab'\n")
    dist = tmp_path / "lab_family-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-family\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[portrait_dpo.model_families]\nlab = lab_family:LabFamily\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_model(tiny_model_dir).save(tmp_path / "model", "# lab\n")
    (tmp_path / "model" / "family.json").write_text('{"family": "lab"}')
    model = load_model(tmp_path / "model")
    assert type(model).__name__ == "LabFamily" and model.size == 32

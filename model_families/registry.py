"""Which family a model folder belongs to (its family.json), and loading it by path.

Families come from two places: the ones portrait-dpo ships, and those other installed packages declare
under the entry-point group `portrait_dpo.model_families` (`NAME = "package.module:FamilyClass"`), so a team
adds its own family without editing portrait-dpo.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

from data_schemas import UserError
from model_families.family import ModelFamily

SHIPPED = Path(__file__).parent / "embedded" / "checkpoint"
ENTRY_POINTS = "portrait_dpo.model_families"


def _families() -> dict[str, type]:
    # Imported here: each family pulls in its own heavy libraries (diffusers, transformers).
    from model_families.embedded.family import EmbeddedFamily
    from model_families.wan_audio.family import WanAudioFamily

    shipped = {family.name: family for family in (EmbeddedFamily, WanAudioFamily)}
    plugins = {point.name: point for point in entry_points(group=ENTRY_POINTS) if point.name not in shipped}
    return {**shipped, **{name: point.load() for name, point in plugins.items()}}


def family_names() -> tuple[str, ...]:
    """The families a model folder may name."""
    return tuple(_families())


def model_path(model: str | Path) -> Path:
    """The folder behind a --model value; `embedded` means the checkpoint shipped with portrait-dpo."""
    return SHIPPED if str(model) == "embedded" else Path(model)


def load_model(model: str | Path, device: str = "cpu", flag: str = "--model") -> ModelFamily:
    """Load a model folder of any family, or raise one UserError naming the folder and the fix."""
    path = model_path(model)
    marker = path / "family.json"
    if not path.is_dir():
        raise UserError(f"{flag} {model}: folder not found; give a model folder (train pretrain / train init-model) "
                        "or `embedded`")
    if not marker.is_file():
        raise UserError(f"{flag} {model}: not a model folder (no family.json); give a folder written by "
                        "`train pretrain`, `train dpo` or `train init-model`")
    try:
        name = json.loads(marker.read_text(encoding="utf-8"))["family"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{marker}: not a family.json ({{\"family\": NAME}}); rewrite it or re-save the model") from None
    families = _families()
    if name not in families:
        raise UserError(f"{marker}: unknown family {name!r}; this portrait-dpo knows {', '.join(families)}")
    return families[name].load(path, device)

"""A latent cache on disk: every clip and condition of a dataset encoded once by a model family, in safetensors shards.

Layout of a cache folder:

    cache.json                         {"format": 1, "family": NAME, "version": WEIGHTS_HASH}
    clips-<hash>.safetensors           clip sha256 → latents [T, ...]
    conditions-<hash>.safetensors      "<condition_id>/<name>" → conditioning tensor
    fixed-<frames>.safetensors         the family's fixed latents for clips of that many latent frames (wan-audio:
                                       the grey clip's), handed to the family when the cache opens

A shard is written to a temporary name and renamed when complete, and its name is a hash of the keys it
holds, so a killed run leaves only whole shards and processes under `accelerate launch` never collide; a
second run skips every key already written. Readers open the shards with safetensors' `safe_open`, which
memory-maps them: a key's tensor is read when a batch needs it. A cache made by another family or another
version of the weights (the encoders' latents differ) is refused with the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from data_schemas import UserError
from model_families.family import Conditioning, ModelFamily

FORMAT = 1
KINDS = ("clips", "conditions")


def check_cache(path: Path, family: ModelFamily, flag: str = "--cache") -> None:
    """UserError unless `path` is a cache made by this family at this weights version."""
    meta_path = Path(path) / "cache.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{flag} {path}: no readable cache.json; make the cache with `train cache --out {path}`") from None
    made, wanted = (meta.get("family"), meta.get("version")), (family.name, family.version)
    if made != wanted or meta.get("format") != FORMAT:
        raise UserError(f"{flag} {path}: made by {made[0]} {made[1]}, but the model is {wanted[0]} {wanted[1]}; "
                        f"run `train cache` with this --model and a new --out")


class ShardedTensors(Mapping):
    """Read-only view of one kind of shard (clips or conditions): key → tensor, memory-mapped."""

    def __init__(self, folder: Path, kind: str) -> None:
        self._files = {}  # key → open safe_open handle
        for shard in sorted(Path(folder).glob(f"{kind}-*.safetensors")):
            self.add(shard)

    def add(self, shard: Path) -> list[str]:
        """Index one more shard (memory-mapped); returns the keys it adds."""
        handle = safe_open(str(shard), framework="pt")
        added = [key for key in handle.keys() if key not in self._files]
        self._files.update(dict.fromkeys(added, handle))
        return added

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._files[key].get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, key: object) -> bool:
        return key in self._files


class CachedConditions(Mapping):
    """condition_id → Conditioning, over the conditions shards ("<condition_id>/<name>" keys)."""

    def __init__(self, tensors: ShardedTensors) -> None:
        self._tensors = tensors
        self._names: dict[str, list[str]] = {}
        self._index(tensors)

    def _index(self, keys: Iterable[str]) -> None:
        for key in keys:
            condition, name = key.rsplit("/", 1)
            self._names.setdefault(condition, []).append(name)

    def add(self, shard: Path) -> list[str]:
        """Index one more conditions shard; returns the tensor keys it adds."""
        added = self._tensors.add(shard)
        self._index(added)
        return added

    def __getitem__(self, condition: str) -> Conditioning:
        return {name: self._tensors[f"{condition}/{name}"] for name in self._names[condition]}

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class ShardWriter:
    """A growing cache of one kind: existing keys are visible, new ones go out in shards of `shard_size`.

    The shards on disk are indexed once, when the writer opens; each flush indexes only the shard it wrote, so a
    fill stays linear in its size (re-reading every shard after each flush made a large fill quadratic)."""

    def __init__(self, folder: Path, kind: str, shard_size: int, flatten=lambda key, value: {key: value}) -> None:
        self.folder, self.kind, self.shard_size, self._flatten = Path(folder), kind, shard_size, flatten
        self._pending: dict[str, object] = {}
        self.written = 0
        tensors = ShardedTensors(self.folder, self.kind)
        self.existing = tensors if self.kind == "clips" else CachedConditions(tensors)

    def __contains__(self, key: str) -> bool:
        return key in self._pending or key in self.existing

    def __getitem__(self, key: str):
        return self._pending[key] if key in self._pending else self.existing[key]

    def __setitem__(self, key: str, value) -> None:
        self._pending[key] = value
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending keys as one shard (temporary name, then an atomic rename)."""
        if not self._pending:
            return
        tensors = {}
        for key, value in self._pending.items():
            tensors.update({k: v.detach().cpu().contiguous() for k, v in self._flatten(key, value).items()})
        name = hashlib.sha256("\n".join(sorted(tensors)).encode()).hexdigest()[:16]
        self.existing.add(_save_whole(tensors, self.folder / f"{self.kind}-{name}.safetensors"))
        self.written += len(self._pending)
        self._pending = {}


def _save_whole(tensors: dict[str, torch.Tensor], shard: Path) -> Path:
    """Write `shard` under a temporary name, then rename it: readers and other processes see it whole or not at all."""
    partial = shard.with_name(f".{shard.stem}.{os.getpid()}.partial")
    save_file(tensors, str(partial))
    os.replace(partial, shard)
    return shard


def write_fixed_latents(out: Path, family: ModelFamily, frames: int) -> None:
    """Keep `family.fixed_latents(frames)` in the cache, unless it is there (any process may write the same file)."""
    shard = Path(out) / f"fixed-{frames}.safetensors"
    if not shard.exists():
        tensors = {name: tensor.contiguous() for name, tensor in family.fixed_latents(frames).items()}
        if tensors:
            _save_whole(tensors, shard)


def condition_tensors(condition: str, conditioning: Conditioning) -> dict[str, torch.Tensor]:
    """A conditioning's tensors under their cache keys."""
    return {f"{condition}/{name}": tensor for name, tensor in conditioning.items()}


def open_writers(out: Path, family: ModelFamily, shard_size: int, is_main: bool) -> tuple[ShardWriter, ShardWriter]:
    """(clips, conditions) writers of a new or partly written cache for `family`; refuses another model's cache."""
    out = Path(out)
    meta = out / "cache.json"
    if is_main:
        if meta.exists():
            check_cache(out, family, "--out")
        else:
            out.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"format": FORMAT, "family": family.name, "version": family.version}) + "\n",
                            encoding="utf-8")
    return (ShardWriter(out, "clips", shard_size),
            ShardWriter(out, "conditions", shard_size, flatten=condition_tensors))


def open_cache(path: Path, family: ModelFamily) -> tuple[ShardedTensors, CachedConditions]:
    """(clip latents, conditionings) of a cache made by `family`, memory-mapped; the family takes the cache's fixed
    latents."""
    check_cache(path, family)
    for shard in sorted(Path(path).glob("fixed-*.safetensors")):
        family.use_fixed_latents(load_file(shard))
    return ShardedTensors(path, "clips"), CachedConditions(ShardedTensors(path, "conditions"))

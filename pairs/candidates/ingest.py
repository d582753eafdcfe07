"""Adding clips to a campaign: every row is checked fully before anything of it is written.

`pairs ingest` and `pairs generate` both end here, so generated and imported clips obey the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from campaign.store import Campaign
from media_io.hashing import sha256_file
from data_schemas import Clip, Condition, UserError, require_valid
from pairs.candidates.manifest import ManifestRow, RowProblem
from media_io.codecs import MediaInfo, probe, read_audio, read_image


@dataclass
class IngestReport:
    """What happened to each row: ingested, already present, or refused with a reason."""

    ingested: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _ConditionMedia:
    reference_sha: str
    audio_sha: str
    pose_sha: str | None


@dataclass(frozen=True)
class _Staged:
    row: ManifestRow
    info: MediaInfo
    sha256: str
    media: _ConditionMedia


def _reason(exc: UserError, path: Path) -> str:
    message = str(exc)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


class RowChecker:
    """Holds what is already known (campaign and earlier rows) while rows are checked one by one."""

    def __init__(self, campaign: Campaign, require_audio: bool) -> None:
        self.require_audio = require_audio
        clips = campaign.table("clips").select(["sha256", "condition_id", "fps", "width", "height"]).to_pylist()
        self.clip_owner = {c["sha256"]: c["condition_id"] for c in clips}
        self.seen_line: dict[str, int] = {}
        self.shape = {c["condition_id"]: (c["fps"], c["width"], c["height"]) for c in clips}
        self.condition_media = {
            c["condition_id"]: _ConditionMedia(_media_sha(c["reference_image"]), _media_sha(c["audio"]),
                                               _media_sha(c["pose"]))
            for c in campaign.table("conditions").to_pylist()
        }
        self._file_sha: dict[Path, str] = {}
        self._media_checked: dict[tuple, _ConditionMedia | tuple[str, str]] = {}

    def check(self, row: ManifestRow) -> _Staged | RowProblem | None:
        """A staged row, a problem, or None when the clip is already in the campaign."""
        for key in ("clip", "reference_image", "audio", "pose"):
            path = getattr(row, key)
            if path is not None and not path.is_file():
                return RowProblem(row.line, str(path), f"{key} file not found; check the path")
        try:
            info = probe(row.clip)
        except UserError as exc:
            return RowProblem(row.line, str(row.clip), _reason(exc, row.clip))
        if self.require_audio and not info.has_audio:
            return RowProblem(row.line, str(row.clip),
                              "no audio track; mux the condition's audio into the clip (or pass --allow-silent)")
        sha = sha256_file(row.clip)
        if sha in self.seen_line:
            return RowProblem(row.line, str(row.clip),
                              f"duplicate clip: same content as line {self.seen_line[sha]}; remove the row")
        self.seen_line[sha] = row.line
        if sha in self.clip_owner:
            if self.clip_owner[sha] == row.condition_id:
                return None
            return RowProblem(row.line, str(row.clip), f"duplicate clip: already in the campaign under condition "
                              f"{self.clip_owner[sha]}; remove the row")
        media = self._condition_media(row)
        if isinstance(media, RowProblem):
            return media
        known = self.condition_media.get(row.condition_id)
        if known is not None and known != media:
            return RowProblem(row.line, str(row.reference_image),
                              f"condition {row.condition_id} already has a different reference image, audio or pose;"
                              " use a new condition_id")
        shape = (info.fps, info.width, info.height)
        expected = self.shape.get(row.condition_id)
        if expected is not None and (abs(expected[0] - shape[0]) > 1e-3 or expected[1:] != shape[1:]):
            return RowProblem(row.line, str(row.clip),
                              f"{shape[0]:g} fps {shape[1]}x{shape[2]} differs from the {expected[0]:g} fps "
                              f"{expected[1]}x{expected[2]} of condition {row.condition_id}'s other clips; "
                              "re-export at the same fps and size")
        self.clip_owner[sha] = row.condition_id
        self.shape.setdefault(row.condition_id, shape)
        self.condition_media.setdefault(row.condition_id, media)
        return _Staged(row, info, sha, media)

    def _condition_media(self, row: ManifestRow) -> _ConditionMedia | RowProblem:
        # The K clips of a condition share its files: decode them once, not once per clip.
        key = (row.reference_image, row.audio, row.pose)
        if key not in self._media_checked:
            self._media_checked[key] = self._check_condition_files(*key)
        outcome = self._media_checked[key]
        return outcome if isinstance(outcome, _ConditionMedia) else RowProblem(row.line, *outcome)

    def _check_condition_files(self, reference: Path, audio: Path, pose: Path | None
                               ) -> _ConditionMedia | tuple[str, str]:
        """The condition's media hashes, or (file, reason) when one of them is unusable."""
        try:
            read_image(reference)
        except UserError as exc:
            return str(reference), _reason(exc, reference)
        try:
            if read_audio(audio).size == 0:
                return str(audio), "audio is empty; give a file with sound"
        except UserError as exc:
            return str(audio), _reason(exc, audio)
        if pose is not None:
            problem = _pose_problem(pose)
            if problem:
                return str(pose), problem
        return _ConditionMedia(self.sha(reference), self.sha(audio), self.sha(pose) if pose is not None else None)

    def sha(self, path: Path) -> str:
        if path not in self._file_sha:
            self._file_sha[path] = sha256_file(path)
        return self._file_sha[path]


def _media_sha(relative: str | None) -> str | None:
    return None if relative is None else Path(relative).stem


def _pose_problem(path: Path) -> str | None:
    if path.suffix.lower() != ".npy":
        return "pose must be a .npy array [frames, 3] of yaw/pitch/roll in radians"
    try:
        pose = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        return f"not a readable .npy file ({exc}); save it with numpy.save"
    if pose.ndim != 2 or pose.shape[1] != 3 or not np.issubdtype(pose.dtype, np.floating):
        return f"pose has shape {pose.shape} {pose.dtype}; expected float [frames, 3]"
    return None


def ingest_rows(
    campaign: Campaign, rows: list[ManifestRow], require_audio: bool = True, progress: bool = True
) -> IngestReport:
    """Check every row, then copy the good rows' media and add their conditions and clips."""
    report = IngestReport()
    records = checked_records(campaign, RowChecker(campaign, require_audio), rows, report, progress)
    report.ingested = campaign.add_rows(records).get("clips", 0)
    return report


def checked_records(campaign: Campaign, checker: RowChecker, rows: list[ManifestRow], report: IngestReport,
                    progress: bool = True) -> dict[str, list]:
    """Check every row (counting refused and already present ones in `report`), copy the good rows' media into
    the campaign; returns their catalog records, {"conditions": [...], "clips": [...]}, to be added."""
    staged: list[_Staged] = []
    for row in tqdm(rows, desc="check", unit="clip", disable=not progress):
        outcome = checker.check(row)
        if outcome is None:
            report.unchanged += 1
        elif isinstance(outcome, RowProblem):
            report.problems.append(outcome)
        else:
            staged.append(outcome)
    conditions: dict[str, Condition] = {}
    clips = []
    for item in tqdm(staged, desc="copy", unit="clip", disable=not progress):
        row = item.row
        if row.condition_id not in conditions:
            conditions[row.condition_id] = require_valid(Condition(
                condition_id=row.condition_id,
                reference_image=campaign.add_media(row.reference_image, item.media.reference_sha),
                audio=campaign.add_media(row.audio, item.media.audio_sha),
                pose=campaign.add_media(row.pose, item.media.pose_sha) if row.pose is not None else None,
                text=row.text,
            ), f"line {row.line}")
        clips.append(require_valid(Clip(
            sha256=item.sha256,
            condition_id=row.condition_id,
            media_path=campaign.add_media(row.clip, item.sha256),
            generator=row.generator,
            generator_version=row.generator_version,
            fps=item.info.fps,
            frames=item.info.frames,
            width=item.info.width,
            height=item.info.height,
            duration=item.info.duration,
            has_audio=item.info.has_audio,
            seed=row.seed,
            params=row.params,
        ), f"line {row.line}"))
    return {"conditions": list(conditions.values()), "clips": clips}

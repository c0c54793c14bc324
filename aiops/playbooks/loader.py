"""Load playbooks from YAML, refusing every error with its file, line and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from aiops.domain.yamlsource import LoadError, SourceError, YamlDocument, parse_yaml, read_yaml
from aiops.playbooks import conditions
from aiops.playbooks.models import Playbook, template_problems


class PlaybookSet(BaseModel):
    """The playbooks in force, as one versioned snapshot (what a workflow is given)."""

    model_config = ConfigDict(frozen=True)

    playbooks: dict[str, Playbook]

    def version(self) -> str:
        """A content hash of every playbook; recorded with the plans made from them."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.playbooks)


def signal_problems(playbooks: PlaybookSet, entities: Mapping[str, str]) -> list[str]:
    """Playbook conditions on signals that no profile or setting defines, or that cannot judge
    the playbook's targets. `entities`: signal name -> entity, for every known signal."""
    out: list[str] = []
    for pb in sorted(playbooks.playbooks.values(), key=lambda p: p.id):
        kinds = [k.value for k in pb.matches.target_kinds]
        out += conditions.signal_problems(pb.id, pb.conditions(), kinds, entities)
    return out


def playbook_from_document(doc: YamlDocument, expected_id: str | None = None) -> Playbook:
    if not isinstance(doc.data, dict):
        raise LoadError([doc.error((), "a playbook is a mapping with id, description, steps, ...")])
    errors = [doc.error(path, reason) for path, reason in template_problems(doc.data)]
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        raise LoadError(_by_line([*doc.validation_errors(exc), *errors])) from exc
    if expected_id is not None and playbook.id != expected_id:
        errors.append(
            doc.error(
                ("id",),
                f"id '{playbook.id}' must equal the file name '{expected_id}': rename one of them",
            )
        )
    if errors:
        raise LoadError(_by_line(errors))
    return playbook


def _by_line(errors: list[SourceError]) -> list[SourceError]:
    return sorted(errors, key=lambda e: (e.line or 0, e.field))


def load_playbook(path: Path) -> Playbook:
    return playbook_from_document(read_yaml(path), expected_id=path.stem)


def parse_playbook(text: str, name: str = "<string>") -> Playbook:
    return playbook_from_document(parse_yaml(text, name))


def playbook_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_playbooks(directory: Path) -> PlaybookSet:
    """Every playbook in `directory`; raises one LoadError listing the problems of all files."""
    if not directory.is_dir():
        raise LoadError([SourceError(str(directory), None, "", "not a directory of playbooks")])
    errors: list[SourceError] = []
    found: dict[str, Playbook] = {}
    files = playbook_files(directory)
    if not files:
        errors.append(SourceError(str(directory), None, "", "no *.yaml playbook files found"))
    for path in files:
        try:
            playbook = load_playbook(path)
        except LoadError as exc:
            errors.extend(exc.errors)
            continue
        if playbook.id in found:
            errors.append(
                SourceError(str(path), None, "id", f"playbook '{playbook.id}' is defined twice")
            )
            continue
        found[playbook.id] = playbook
    if errors:
        raise LoadError(errors)
    return PlaybookSet(playbooks=found)

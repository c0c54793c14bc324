"""Load the signal vocabulary and the metric profiles, refusing every error with its file, line
and field.

The shipped profiles live in `builtin/` next to this module (so an installed package has them);
a user's own profile files (settings `profiles.dirs`) join them, and one named like a shipped
profile replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from aiops.domain.yamlsource import LoadError, SourceError, YamlDocument, read_yaml
from aiops.profiles.models import (
    SPEC_FIELDS,
    Profile,
    ProfilePart,
    SignalSpec,
    Vocabulary,
    check_part_labels,
)

BUILTIN_DIR = Path(__file__).parent / "builtin"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
VOCABULARY_FILE = "signals.yaml"


@dataclass(frozen=True)
class ProfileSet:
    vocabulary: dict[str, SignalSpec]
    profiles: dict[str, Profile]
    sources: dict[str, str]  # profile -> the file it came from

    def entities(self) -> dict[str, str]:
        """Every signal known here -> the entity its series are about."""
        out: dict[str, str] = {name: spec.entity for name, spec in self.vocabulary.items()}
        for p in self.profiles.values():
            out.update({name: spec.entity for name, spec in p.defines.items()})
        return out


def load_vocabulary(path: Path = BUILTIN_DIR / VOCABULARY_FILE) -> dict[str, SignalSpec]:
    doc = read_yaml(path)
    try:
        return Vocabulary.model_validate(doc.data).signals
    except ValidationError as exc:
        raise LoadError(doc.validation_errors(exc)) from exc


def profile_from_document(doc: YamlDocument, vocabulary: dict[str, SignalSpec]) -> Profile:
    """A profile, or a LoadError listing every problem with its line. A signal is one part (a
    mapping) or several (a list); the mapping of a signal the profile defines itself also
    carries its spec (entity, unit, direction, description, ...)."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("signals"), dict):
        raise LoadError(
            [doc.error((), "a profile is a mapping with profile, description, signals")]
        )
    errors: list[SourceError] = []
    signals: dict[str, list[ProfilePart]] = {}
    defines: dict[str, SignalSpec] = {}
    for name, value in data["signals"].items():
        where: tuple[str | int, ...] = ("signals", str(name))
        if not _NAME.fullmatch(str(name)):
            errors.append(
                doc.error(where, f"signal name {name!r} must be snake_case (a-z, 0-9, _)")
            )
            continue
        items = value if isinstance(value, list) else [value]
        parts: list[ProfilePart] = []
        for i, item in enumerate(items):
            at = (*where, i) if isinstance(value, list) else where
            if not isinstance(item, dict):
                errors.append(doc.error(at, "a part is a mapping with query, needs, labels"))
                continue
            spec = {k: v for k, v in item.items() if k in SPEC_FIELDS}
            if spec:
                spec_error = _spec(doc, at, str(name), spec, vocabulary, defines)
                errors.extend(spec_error)
            elif name not in vocabulary:
                errors.append(
                    doc.error(
                        where,
                        f"signal {name!r} is not in the vocabulary ({', '.join(vocabulary)}); "
                        "to define a signal of its own, give it entity, unit, direction and "
                        "description",
                    )
                )
            try:
                part = ProfilePart.model_validate(
                    {k: v for k, v in item.items() if k not in SPEC_FIELDS}
                )
            except ValidationError as exc:
                errors.extend(doc.validation_errors(exc, at))
                continue
            meaning = vocabulary.get(str(name)) or defines.get(str(name))
            if meaning is not None:
                errors.extend(
                    doc.error((*at, "labels"), p) for p in check_part_labels(meaning.entity, part)
                )
            parts.append(part)
        signals[str(name)] = parts
    header = {k: v for k, v in data.items() if k != "signals"}
    try:
        profile = Profile.model_validate({**header, "signals": signals, "defines": defines})
    except ValidationError as exc:
        errors.extend(doc.validation_errors(exc))
    if errors:
        raise LoadError(sorted(errors, key=lambda e: (e.line or 0, e.field)))
    return profile


def _spec(
    doc: YamlDocument,
    at: tuple[str | int, ...],
    name: str,
    spec: dict[str, object],
    vocabulary: dict[str, SignalSpec],
    defines: dict[str, SignalSpec],
) -> list[SourceError]:
    if name in vocabulary:
        return [
            doc.error(
                (*at, next(iter(spec))),
                f"signal {name!r} is defined by the vocabulary: a profile implements it (query, "
                f"needs, labels) and cannot change its meaning ({', '.join(spec)})",
            )
        ]
    try:
        defines[name] = SignalSpec.model_validate(spec)
    except ValidationError as exc:
        return doc.validation_errors(exc, at)
    return []


def load_profile(path: Path, vocabulary: dict[str, SignalSpec]) -> Profile:
    return profile_from_document(read_yaml(path), vocabulary)


def profile_files(directory: Path) -> list[Path]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return [f for f in files if f.name != VOCABULARY_FILE]


def load_profiles(extra_dirs: Iterable[Path] = ()) -> ProfileSet:
    """The vocabulary, the shipped profiles and the user's; one LoadError lists every problem."""
    vocabulary = load_vocabulary()
    profiles: dict[str, Profile] = {}
    sources: dict[str, str] = {}
    errors: list[SourceError] = []
    for directory in [BUILTIN_DIR, *extra_dirs]:
        if not directory.is_dir():
            errors.append(SourceError(str(directory), None, "", "not a directory of profiles"))
            continue
        for path in profile_files(directory):
            try:
                profile = load_profile(path, vocabulary)
            except LoadError as exc:
                errors.extend(exc.errors)
                continue
            if profile.profile in sources and directory == BUILTIN_DIR:
                errors.append(
                    SourceError(str(path), None, "profile", f"{profile.profile!r} is defined twice")
                )
            profiles[profile.profile] = profile
            sources[profile.profile] = str(path)
    if errors:
        raise LoadError(errors)
    return ProfileSet(vocabulary, profiles, sources)

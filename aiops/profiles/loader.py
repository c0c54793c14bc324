"""Load the signal vocabulary and the metric profiles, refusing every error with its file, line
and field.

The shipped profiles live in `builtin/` next to this module (so an installed package has them);
a user's own profile files (settings `profiles.dirs`) join them, and one named like a shipped
profile replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from aiops.domain.yamlsource import LoadError, SourceError, YamlDocument, read_yaml
from aiops.profiles.models import Profile, SignalSpec, Vocabulary, check_part_labels

BUILTIN_DIR = Path(__file__).parent / "builtin"
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
    if not isinstance(doc.data, dict):
        raise LoadError(
            [doc.error((), "a profile is a mapping with profile, description, signals")]
        )
    try:
        profile = Profile.model_validate(doc.data)
    except ValidationError as exc:
        raise LoadError(doc.validation_errors(exc)) from exc
    errors: list[SourceError] = []
    for name, parts in profile.signals.items():
        spec = vocabulary.get(name) or profile.defines.get(name)
        if spec is None:
            errors.append(
                doc.error(
                    ("signals", name),
                    f"signal {name!r} is not in the vocabulary ({', '.join(vocabulary)}); to "
                    "define a signal of its own, give it entity, unit, direction and description",
                )
            )
            continue
        if name in vocabulary and name in profile.defines:
            errors.append(
                doc.error(
                    ("signals", name),
                    f"signal {name!r} is defined by the vocabulary: a profile implements it "
                    "(query, needs, labels) and cannot change its meaning",
                )
            )
        for i, part in enumerate(parts):
            for problem in check_part_labels(spec.entity, part):
                errors.append(doc.error(("signals", name, i, "labels"), problem))
    if errors:
        raise LoadError(errors)
    return profile


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

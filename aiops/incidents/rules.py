"""The rules an incident runs on: the policy and the playbooks as their files say now.

The files are the source (a mounted ConfigMap in a cluster): every new incident gets the rules
as they are when it opens, and the kill switch is read again right before every step, so an
edit reaches incidents without restarting anything. Files are parsed again only when their
contents changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from aiops.activities.contracts import RulesSnapshot
from aiops.config import ConfigError, Settings
from aiops.domain.yamlsource import LoadError
from aiops.integrations.discovery import load_profile_set
from aiops.playbooks.loader import PlaybookSet, load_playbooks, playbook_files, signal_problems
from aiops.policy.loader import DEFAULT_FILE, load_policy
from aiops.policy.models import Policy


class RulesError(ValueError):
    """The policy or the playbooks cannot be loaded; the message lists what to fix."""


class RulesSource:
    def __init__(
        self, policies: Path, playbooks: Path, signals: Mapping[str, str] | None = None
    ) -> None:
        """`signals`: every signal the metric profiles define -> its entity; playbooks that
        name another are refused (None: not checked)."""
        self.policies_path = policies
        self.playbooks_path = playbooks
        self.signals = signals
        self._policy: tuple[str, Policy] | None = None
        self._books: tuple[str, PlaybookSet] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RulesSource:
        try:
            profiles, _ = load_profile_set(settings.profiles)
        except ConfigError as exc:
            raise RulesError(str(exc)) from exc
        return cls(settings.policies_dir, settings.playbooks_dir, profiles.entities())

    def policy(self) -> Policy:
        """The policy as its file says now; an invalid or missing one is an error, never a
        permissive default."""
        stamp = _digest([self._policy_file()])
        if self._policy is None or self._policy[0] != stamp:
            try:
                self._policy = (stamp, load_policy(self.policies_path))
            except LoadError as exc:
                raise RulesError(f"the policy in {self.policies_path} is invalid:\n{exc}") from exc
        return self._policy[1]

    def playbooks(self) -> PlaybookSet:
        directory = self.playbooks_path
        files = playbook_files(directory) if directory.is_dir() else []
        stamp = _digest(files)
        if self._books is None or self._books[0] != stamp:
            try:
                books = load_playbooks(directory)
            except LoadError as exc:
                raise RulesError(f"playbooks in {directory} are invalid:\n{exc}") from exc
            problems = [] if self.signals is None else signal_problems(books, self.signals)
            if problems:
                raise RulesError(
                    f"playbooks in {directory} name signals the metric profiles do not have:\n"
                    + "\n".join(problems)
                )
            self._books = (stamp, books)
        return self._books[1]

    def current(self) -> RulesSnapshot:
        return RulesSnapshot(policy=self.policy(), playbooks=self.playbooks())

    def _policy_file(self) -> Path:
        path = self.policies_path
        return path / DEFAULT_FILE if path.is_dir() else path


def load_rules(settings: Settings) -> RulesSnapshot:
    """Policy and playbooks, validated before anything starts."""
    try:
        return RulesSource.from_settings(settings).current()
    except RulesError as exc:
        raise RulesError(f"refusing to start: {exc}") from exc


def _digest(files: list[Path]) -> str:
    """What the files hold now (a missing file hashes as missing: the loader says so)."""
    h = hashlib.sha256()
    for path in files:
        h.update(str(path).encode())
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"\0missing")
    return h.hexdigest()

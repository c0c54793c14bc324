"""`check_kill_switch`: the policy's kill switch as its file says right now, read before every
step an incident would run.

An incident evaluates policy on the snapshot it started with, so a kill switch flipped later
would not reach it; this activity does, including incidents already waiting for approval. A
policy that cannot be read (invalid after an edit, missing) stops execution too: the switch
fails closed.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from aiops.policy.models import Policy

CHECK_KILL_SWITCH = "check_kill_switch"


class KillSwitchInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    step: str  # what would run next (shown in the activity's input in the Temporal UI)


class KillSwitchState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    on: bool
    reason: str
    policy_version: str = ""


class KillSwitchActivities:
    def __init__(self, read_policy: Callable[[], Policy]) -> None:
        """`read_policy` reads the policy as it is now; it raises ValueError (invalid) or
        OSError (unreadable)."""
        self.read_policy = read_policy

    @activity.defn(name=CHECK_KILL_SWITCH)
    def check_kill_switch(self, inp: KillSwitchInput) -> KillSwitchState:
        try:
            policy = self.read_policy()
        except (ValueError, OSError) as exc:  # invalid or unreadable: nothing runs
            state = KillSwitchState(
                on=True,
                reason=f"the policy cannot be read now ({str(exc).splitlines()[0]}); "
                "nothing runs until it can",
            )
        else:
            version = policy.version()
            state = KillSwitchState(
                on=policy.kill_switch,
                reason=f"the kill switch is {'on' if policy.kill_switch else 'off'} in the "
                f"policy now (version {version})",
                policy_version=version,
            )
        return state

    def all(self) -> list[Callable[..., KillSwitchState]]:
        return [self.check_kill_switch]

"""The redactor against a corpus of real-world secret shapes and harmless look-alikes (#14 item
8). Its two rates are the README's figures: `pytest tests/integrations/test_redact.py -q -s`."""

from __future__ import annotations

import time

import pytest

from aiops.integrations.redact import MASK, RedactionError, Redactor
from tests.integrations.redaction_corpus import LOOKALIKES, SECRETS

REDACTOR = Redactor()


@pytest.mark.parametrize(("name", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_shape_is_masked(name: str, text: str, secret: str) -> None:
    out = REDACTOR.text(text)
    assert secret not in out, out
    assert MASK in out


@pytest.mark.parametrize("text", LOOKALIKES)
def test_harmless_look_alikes_are_left_intact(text: str) -> None:
    assert REDACTOR.text(text) == text


def test_corpus_rates() -> None:
    assert len(SECRETS) >= 50 and len(LOOKALIKES) >= 50
    caught = sum(secret not in REDACTOR.text(text) for _, text, secret in SECRETS)
    intact = sum(REDACTOR.text(text) == text for text in LOOKALIKES)
    print(
        f"\nredaction corpus: secrets masked {caught}/{len(SECRETS)}, "
        f"look-alikes intact {intact}/{len(LOOKALIKES)}"
    )
    assert (caught, intact) == (len(SECRETS), len(LOOKALIKES))


def test_keys_and_structure_stay_readable() -> None:
    out = REDACTOR.text('{"user": "app", "password": "pa55w0rd"}')
    assert out == '{"user": "app", "password": "[REDACTED]"}'
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nnext line"
    assert REDACTOR.text(key) == "-----BEGIN RSA PRIVATE KEY-----[REDACTED]\nnext line"
    assert REDACTOR.text(REDACTOR.text("password=x1")) == "password=[REDACTED]"  # idempotent


def test_operator_patterns_add_to_the_built_in_ones() -> None:
    own = Redactor([r"ACME-[0-9]{6}"])
    assert own.text("badge ACME-123456 used") == f"badge {MASK} used"
    with pytest.raises(RedactionError, match=r"llm\.redact_patterns\[0\]"):
        Redactor(["(unclosed"])


def test_a_large_log_is_redacted_quickly() -> None:
    log = "\n".join(text for _, text, _ in SECRETS) + "\n" + "\n".join(LOOKALIKES)
    big = "\n".join([log] * 20)  # ~150 KB, more than get_pod_logs' cap
    started = time.perf_counter()
    out = REDACTOR.text(big)
    assert time.perf_counter() - started < 5.0  # generous for a loaded 2-core machine
    assert "pa55w0rd" not in out

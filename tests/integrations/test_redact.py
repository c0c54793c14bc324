"""The redactor against a corpus of real-world secret shapes and harmless look-alikes (#14 item
8). Its two rates are the README's figures: `pytest tests/integrations/test_redact.py -q -s`."""

from __future__ import annotations

import base64
import json
import random
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


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")], ids=["spaced", "compact"])
@pytest.mark.parametrize(("name", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secrets_inside_json_text_are_masked_and_the_json_stays_whole(
    name: str, text: str, secret: str, separators: tuple[str, str]
) -> None:
    # MCP text blocks, the model's tool-call arguments and tool results are JSON documents: a
    # mask must not end a string early, eat the fields after it, or leave a dangling escape.
    doc = _in_json(text, separators)
    out = REDACTOR.text(doc)
    assert secret not in out, out
    back = json.loads(out)
    assert (back["url"], back["after"]) == ("http://cart:8080", "x@y")
    assert MASK in back["line"]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_look_alikes_inside_json_text_are_left_intact(text: str) -> None:
    doc = _in_json(text, (",", ":"))
    assert REDACTOR.text(doc) == doc


def _in_json(text: str, separators: tuple[str, str]) -> str:
    # The fields after the line hold what a greedy rule would swallow: a port after a colon, an @.
    doc = {"line": text, "url": "http://cart:8080", "after": "x@y"}
    return json.dumps(doc, separators=separators)


def test_structured_data_masks_what_its_keys_name_a_secret() -> None:
    # Labels, tool answers and log fields arrive as data: the key that says "password" is not in
    # the string that holds the password.
    data = {
        "password": "plainpw-1",
        "labels": {"api_key": "k3y-2", "pod": "cart-1"},
        "DB_TOKENS": ["t0k-3"],
        "secretName": "db-credentials",
        "max_tokens": 2000,
        "token": "",
        "note": "password=inline-4",
    }
    assert REDACTOR.data(data) == {
        "password": MASK,
        "labels": {"api_key": MASK, "pod": "cart-1"},
        "DB_TOKENS": [MASK],
        "secretName": "db-credentials",
        "max_tokens": 2000,
        "token": "",
        "note": f"password={MASK}",
    }


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


@pytest.mark.parametrize(
    "blob",
    [
        base64.urlsafe_b64encode(random.Random(7).randbytes(12_000)).decode(),  # a token dump
        random.Random(8).randbytes(8_000).hex(),  # a hex dump
        "a" * 16_000,
    ],
    ids=["urlsafe-base64", "hex", "one-letter"],
)
def test_a_long_run_of_name_characters_is_redacted_in_linear_time(blob: str) -> None:
    # A key pattern that may start anywhere inside a run of name characters tries every start and
    # every length: 4 KB took 11 s, 16 KB minutes, and every log line and pod log passes here.
    started = time.perf_counter()
    out = REDACTOR.text(f"pod log: {blob} password=after-blob")
    assert time.perf_counter() - started < 2.0  # ~0.02 s; generous for a loaded 2-core machine
    assert out == f"pod log: {blob} password={MASK}"

"""Connecting to Temporal (dev server, self-hosted cluster or Temporal Cloud) from settings."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, TLSConfig

from aiops.config import TemporalSettings


class TemporalUnavailableError(Exception):
    """Temporal could not be reached; the message says where and what to do."""


async def connect(settings: TemporalSettings, *, timeout_s: float = 5.0) -> Client:
    tls: bool | TLSConfig = settings.tls
    if settings.tls_cert is not None and settings.tls_key is not None:
        tls = TLSConfig(
            client_cert=settings.tls_cert.read_bytes(),
            client_private_key=settings.tls_key.read_bytes(),
        )
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            api_key=api_key,
            tls=tls if (tls or api_key) else False,
            data_converter=pydantic_data_converter,
            connect_timeout=timedelta(seconds=timeout_s),
        )
    except (RuntimeError, RPCError) as exc:
        raise TemporalUnavailableError(
            f"Temporal at {settings.address} (namespace {settings.namespace}) is unreachable "
            f"({_first_line(exc)}); run `aiops dev` for a local server or set "
            "AIOPS_TEMPORAL__ADDRESS"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    for needle, plain in (
        ("ConnectionRefused", "connection refused"),
        ("timed out", "connection timed out"),
        ("Timeout", "connection timed out"),
        ("dns error", "host name not found"),
        ("certificate", "TLS certificate problem"),
        ("Unauthenticated", "not authenticated: check the API key or client certificate"),
        ("PermissionDenied", "permission denied for this namespace"),
        ("NamespaceNotFound", "namespace not found"),
    ):
        if needle in text:
            return plain
    lines = text.strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__

"""The lab Kubernetes API: the REST paths the official `kubernetes` client calls, served from a
`Cluster` by a small threaded HTTP server on 127.0.0.1.

Handlers take the cluster's lock only for the store operation itself and serialise outside it, so
that a simulation polling every second and Prometheus scraping do not slow each other down.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from aiops_lab.cluster import ApiError, Cluster
from aiops_lab.cluster.errors import BadRequestError, MethodNotAllowedError, NotFoundError
from aiops_lab.cluster.resources import RESOURCES, ResourceType
from aiops_lab.cluster.subresources import format_log
from aiops_lab.kubeapi import discovery, tables

log = logging.getLogger(__name__)

_CLUSTER_SUBRESOURCES = frozenset({"status", "finalize"})


class _Route:
    __slots__ = ("name", "namespace", "rtype", "sub")

    def __init__(
        self, rtype: ResourceType, namespace: str | None, name: str | None, sub: str | None
    ) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.name = name
        self.sub = sub


def _route(group: str, version: str, parts: list[str]) -> _Route:
    namespace: str | None = None
    if (
        parts
        and parts[0] == "namespaces"
        and len(parts) >= 3
        and parts[2] not in _CLUSTER_SUBRESOURCES
    ):
        namespace = parts[1]
        parts = parts[2:]
    if not parts or len(parts) > 3:
        raise NotFoundError("the server could not find the requested resource")
    rtype = RESOURCES.get(parts[0])
    if rtype is None or rtype.group != group or rtype.version != version:
        raise NotFoundError(
            f"the server could not find the requested resource ({'/'.join(parts)}): the lab API "
            f"serves {', '.join(sorted(RESOURCES))}"
        )
    if namespace is not None and not rtype.namespaced:
        raise NotFoundError(f"{rtype.plural} are not namespaced")
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    return _Route(rtype, namespace, name, sub)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment (buffered writer, flushed per request) and without
    # Nagle: otherwise keep-alive clients wait ~40 ms per request on delayed ACKs.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: LabApiHTTPServer

    # --------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"the request body is not valid JSON: {exc}") from exc

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            self._handle(method)
        except ApiError as exc:
            self._json(exc.code, exc.status())
        except Exception as exc:  # one bad request must not take the server down
            log.exception("lab API: %s %s failed", method, self.path)
            self._json(500, ApiError(f"internal error: {exc}").status())

    # --------------------------------------------------------------- routing

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts in (["healthz"], ["readyz"], ["livez"]):
            self._send(200, b"ok", "text/plain")
            return
        if parts == ["version"]:
            self._json(200, discovery.version_info())
            return
        if parts == ["api"]:
            host = self.headers.get("Host") or "127.0.0.1"
            self._json(200, discovery.api_versions(host))
            return
        if parts == ["apis"]:
            self._json(200, discovery.api_group_list())
            return
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis":
            if len(parts) == 2:
                doc = discovery.api_group(parts[1])
                if doc is None:
                    raise NotFoundError(f"the server could not find the API group {parts[1]}")
                self._json(200, doc)
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NotFoundError(f"the server could not find the requested resource {url.path}")
        if not rest:
            doc = discovery.api_resource_list(group, version)
            if doc is None:
                raise NotFoundError(f"the server could not find {group or 'core'}/{version}")
            self._json(200, doc)
            return
        route = _route(group, version, rest)
        self._resource(method, route, query)

    def _resource(self, method: str, route: _Route, query: dict[str, str]) -> None:
        cluster = self.server.cluster
        rtype = route.rtype
        dry_run = _dry_run(query)
        if query.get("watch") in ("true", "1"):
            if method != "GET":
                raise MethodNotAllowedError("watch is only for GET")
            if route.name is not None:
                # GET .../pods/NAME?watch=true (old style): a watch of one object.
                query = {
                    **query,
                    "fieldSelector": _and(
                        query.get("fieldSelector"), f"metadata.name={route.name}"
                    ),
                }
            self._watch(route, query)
            return
        if route.name is None:
            if method == "GET":
                self._list(route, query)
            elif method == "POST":
                if rtype.namespaced and route.namespace is None:
                    raise MethodNotAllowedError(
                        f"create {rtype.plural} in a namespace (/namespaces/NAME/{rtype.plural})"
                    )
                self._json(
                    201, cluster.create(rtype.plural, route.namespace, self._body(), dry_run)
                )
            else:
                raise MethodNotAllowedError(f"{method} is not allowed on the {rtype.plural} list")
            return
        if rtype.namespaced and route.namespace is None:
            raise NotFoundError("the server could not find the requested resource")
        if route.sub is None:
            self._item(method, route, query, dry_run)
        else:
            self._subresource(method, route, query, dry_run)

    def _list(self, route: _Route, query: dict[str, str]) -> None:
        rtype = route.rtype
        items, rv = self.server.cluster.list(
            rtype.plural, route.namespace, query.get("labelSelector"), query.get("fieldSelector")
        )
        meta: dict[str, Any] = {"resourceVersion": rv}
        limit = _int_param(query, "limit") or 0
        if limit > 0:
            offset = _decode_continue(query.get("continue", ""))
            page = items[offset : offset + limit]
            if offset + limit < len(items):
                meta["continue"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - offset - limit
            items = page
        if tables.wants_table(self.headers.get("Accept")):
            self._json(
                200,
                tables.table(
                    rtype.plural,
                    items,
                    meta,
                    query.get("includeObject"),
                    now=self.server.cluster.now(),
                ),
            )
            return
        self._json(
            200,
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version,
                "metadata": meta,
                "items": items,
            },
        )

    def _watch(self, route: _Route, query: dict[str, str]) -> None:
        """Stream ADDED/MODIFIED/DELETED events (chunked JSON lines) until timeoutSeconds.

        Changes are found by comparing resourceVersions on each poll of the store; the poll lists
        only when the store's resourceVersion moved, so an idle watch costs next to nothing."""
        cluster = self.server.cluster
        rtype = route.rtype
        timeout = min(float(query.get("timeoutSeconds") or 1800), 3600.0)
        since = query.get("resourceVersion") or ""
        since_rv = int(since) if since.isdigit() else 0
        label, field = query.get("labelSelector"), query.get("fieldSelector")
        items, rv = cluster.list(rtype.plural, route.namespace, label, field)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()  # clients wait for the headers before they consider the watch open
        known: dict[tuple[str, str], dict[str, Any]] = {}
        initial: list[tuple[str, dict[str, Any]]] = []
        for obj in items:
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            known[key] = obj
            if since_rv == 0 or int(obj["metadata"]["resourceVersion"]) > since_rv:
                initial.append(("ADDED", obj))
        deadline = time.monotonic() + timeout
        try:
            self._chunk(initial)
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                self.server.stopping.wait(0.1)
                if cluster.resource_version() == rv:
                    continue
                items, rv = cluster.list(rtype.plural, route.namespace, label, field)
                current = {
                    (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items
                }
                changes: list[tuple[str, dict[str, Any]]] = []
                for key, obj in current.items():
                    before = known.get(key)
                    if before is None:
                        changes.append(("ADDED", obj))
                    elif (
                        before["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
                    ):
                        changes.append(("MODIFIED", obj))
                changes += [("DELETED", obj) for key, obj in known.items() if key not in current]
                known = current
                self._chunk(changes)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away: the watch ends
        self.close_connection = True

    def _follow_log(self, namespace: str, name: str, query: dict[str, str]) -> None:
        """`kubectl logs -f`: the log so far, then new lines as they come, until the container
        is replaced or the pod goes away."""
        cluster = self.server.cluster
        container = query.get("container")
        timestamps = query.get("timestamps") in ("true", "1")
        lines, container_id, seen = cluster.log_lines(namespace, name, container)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._text_chunk(format_log(lines, _int_param(query, "tailLines"), timestamps))
            while not self.server.stopping.wait(0.2):
                try:
                    lines, current_id, written = cluster.log_lines(namespace, name, container)
                except ApiError:
                    break  # the pod is gone
                if current_id != container_id:
                    # The container restarted: its last words, then the stream ends (as with
                    # kubectl logs -f).
                    lines, _, written = cluster.log_lines(namespace, name, container, True)
                    self._text_chunk(format_log(_unseen(lines, written, seen), None, timestamps))
                    break
                self._text_chunk(format_log(_unseen(lines, written, seen), None, timestamps))
                seen = written
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _text_chunk(self, text: str) -> None:
        data = text.encode()
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _chunk(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if not events:
            return
        data = b"".join(
            json.dumps({"type": t, "object": o}, separators=(",", ":")).encode() + b"\n"
            for t, o in events
        )
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _item(self, method: str, route: _Route, query: dict[str, str], dry_run: bool) -> None:
        cluster = self.server.cluster
        plural, ns, name = route.rtype.plural, route.namespace, route.name or ""
        if method == "GET":
            obj = cluster.get(plural, ns, name)
            if tables.wants_table(self.headers.get("Accept")):
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                obj = tables.table(
                    plural, [obj], meta, query.get("includeObject"), now=cluster.now()
                )
            self._json(200, obj)
        elif method == "PUT":
            self._json(200, cluster.replace(plural, ns, name, self._body(), dry_run))
        elif method == "PATCH":
            content_type = self.headers.get("Content-Type", "")
            self._json(200, cluster.patch(plural, ns, name, content_type, self._body(), dry_run))
        elif method == "DELETE":
            body = self._body() or {}
            grace = query.get("gracePeriodSeconds")
            grace_s = (
                _int_param(query, "gracePeriodSeconds")
                if grace not in (None, "")
                else body.get("gracePeriodSeconds")
            )
            dry_run = dry_run or "All" in (body.get("dryRun") or [])
            self._json(200, cluster.delete(plural, ns, name, dry_run, grace_s))
        else:
            raise MethodNotAllowedError(f"{method} is not allowed on {plural}")

    def _subresource(
        self, method: str, route: _Route, query: dict[str, str], dry_run: bool
    ) -> None:
        cluster = self.server.cluster
        plural, ns, name, sub = route.rtype.plural, route.namespace, route.name or "", route.sub
        if sub == "status" and method == "GET":
            self._json(200, cluster.get(plural, ns, name))
        elif plural == "deployments" and sub == "scale" and ns is not None:
            if method == "GET":
                self._json(200, cluster.get_scale(ns, name))
            elif method == "PUT":
                self._json(200, cluster.replace_scale(ns, name, self._body(), dry_run))
            elif method == "PATCH":
                content_type = self.headers.get("Content-Type", "")
                self._json(200, cluster.patch_scale(ns, name, content_type, self._body(), dry_run))
            else:
                raise MethodNotAllowedError(f"{method} is not allowed on deployments/scale")
        elif plural == "pods" and sub == "eviction" and method == "POST" and ns is not None:
            body = self._body() or {}
            dry_run = dry_run or "All" in ((body.get("deleteOptions") or {}).get("dryRun") or [])
            self._json(201, cluster.evict(ns, name, body, dry_run))
        elif plural == "pods" and sub == "log" and method == "GET" and ns is not None:
            if query.get("follow") in ("true", "1"):
                self._follow_log(ns, name, query)
                return
            text = cluster.pod_log(
                ns,
                name,
                container=query.get("container"),
                previous=query.get("previous") in ("true", "1"),
                tail_lines=_int_param(query, "tailLines"),
                timestamps=query.get("timestamps") in ("true", "1"),
            )
            self._send(200, text.encode(), "text/plain")
        else:
            raise MethodNotAllowedError(f"{method} is not allowed on {plural}/{sub} in the lab API")


def _int_param(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError as exc:
        raise BadRequestError(f"query parameter {name}={value!r} must be an integer") from exc


def _unseen(lines: Sequence[str], written: int, seen: int) -> Sequence[str]:
    """The last `written - seen` lines (the log keeps only its tail, so never more than it has)."""
    if written <= seen:
        return []
    return lines[len(lines) - min(written - seen, len(lines)) :]


def _and(first: str | None, second: str) -> str:
    return f"{first},{second}" if first else second


def _dry_run(query: dict[str, str]) -> bool:
    value = query.get("dryRun")
    if value is None or value == "":
        return False
    if value != "All":
        raise BadRequestError(f"invalid dryRun value {value!r}: the only valid value is 'All'")
    return True


def _decode_continue(token: str) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError as exc:
        raise BadRequestError(f"invalid continue token {token!r}") from exc


class LabApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], cluster: Cluster) -> None:
        super().__init__(address, _Handler)
        self.cluster = cluster
        self.stopping = threading.Event()  # ends open watches on shutdown


class LabApiServer:
    """The lab API on 127.0.0.1 in a background thread. Starts the cluster's reconcile loop if it
    is not running yet (and stops it again on `stop`)."""

    def __init__(
        self,
        cluster: Cluster,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        run_controllers: bool = True,
    ) -> None:
        """`run_controllers=False` when the caller ticks the cluster itself (a simulation that
        drives time); otherwise the cluster's background loop is started if it is not running."""
        self.cluster = cluster
        self._httpd = LabApiHTTPServer((host, port), cluster)
        self._thread: threading.Thread | None = None
        self._run_controllers = run_controllers
        self._owns_cluster_loop = False

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LabApiServer:
        if self._thread is not None:
            return self
        if self._run_controllers and not self.cluster.running:
            self.cluster.start()
            self._owns_cluster_loop = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"lab-kubeapi-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        if self._owns_cluster_loop:
            self.cluster.stop()
            self._owns_cluster_loop = False

    def write_kubeconfig(self, path: str | Path, context: str = "aiops-lab") -> Path:
        return write_kubeconfig(path, self.url, context=context)

    def __enter__(self) -> LabApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_lab_api(
    cluster: Cluster | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    run_controllers: bool = True,
) -> LabApiServer:
    """Serve `cluster` (default: a fresh Online Boutique) on host:port (0 = a free port)."""
    server = LabApiServer(
        cluster or Cluster.boutique(), host, port, run_controllers=run_controllers
    )
    return server.start()


def write_kubeconfig(
    path: str | Path, server_url: str, *, context: str = "aiops-lab", namespace: str = "boutique"
) -> Path:
    """A kubeconfig for the lab API (plain HTTP on loopback; the token is not checked)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server_url}}],
        "users": [{"name": f"{context}-admin", "user": {"token": "aiops-lab"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": f"{context}-admin", "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target

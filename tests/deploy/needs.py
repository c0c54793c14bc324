"""What each aiops process and each MCP tool needs from a cluster, derived from the code itself.

Kubernetes permissions: every call the code makes on the official client's API classes
(`CoreV1Api.read_namespaced_pod_log`, `AppsV1Api.patch_namespaced_deployment_scale`, ...) is
found in the source, and the client's own definition of that method gives its HTTP method and
path, hence the (apiGroup, resource, verb) RBAC must allow. Who makes which call:

- the worker: the executor and its fact readers (every call in their modules) and the agent's
  ClusterReader port (aiops/agent/ports.py), served by the KubernetesReader;
- the MCP server: the KubernetesReader methods its tools call (found in each `@mcp.tool`
  function's body);
- the webhook and the Slack app: nothing (they only talk to Temporal).

Files: the MCP tools that read playbooks or the policy (`b.playbooks()`, `b.policy()`), and the
processes that load the rules at start (`load_rules`, `load_policy`).

Decision keys: the front-door keys (`settings.signing.<door>_key`) a process's sources sign with;
a person's own key (`cli_key`) never belongs in a pod.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from kubernetes import client as k8s

REPO = Path(__file__).resolve().parents[2]
AIOPS = REPO / "aiops"

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

API_CLASSES = (k8s.CoreV1Api, k8s.AppsV1Api, k8s.PolicyV1Api)
# The executor and the facts its preconditions and observe_target read (the package also holds
# the investigation's reader, whose calls the worker needs anyway).
EXECUTOR_SOURCES = ("integrations/kubernetes/*.py",)
READER_SOURCE = "integrations/kubernetes/readers.py"
READER_CLASS = "KubernetesReader"
AGENT_PORT = ("agent/ports.py", "ClusterReader")
MCP_SOURCES = "mcp/*.py"
# Where each process's code lives, for the decision keys it signs with.
PROCESS_SOURCES = {
    "aiops-worker": ("worker.py", "activities/*.py", "incidents/*.py"),
    "aiops-mcp": (MCP_SOURCES,),
    "aiops-webhook": ("webhook.py",),
    "aiops-slack": ("approvals/slack/*.py",),
}
HTTP_VERBS = {
    "POST": "create",
    "PATCH": "patch",
    "PUT": "update",
    "DELETE": "delete",
    "HEAD": "get",
    "OPTIONS": "get",
}


@dataclass(frozen=True)
class Needs:
    grants: frozenset[Grant] = frozenset()
    files: frozenset[str] = frozenset()  # settings fields: playbooks_dir, policies_dir, state_dir
    why: dict[Grant, set[str]] = field(default_factory=dict, compare=False, hash=False)
    keys: frozenset[str] = frozenset()  # signing settings: mcp_key, slack_key


@cache
def api_methods() -> dict[str, Grant]:
    """Every method of the API classes -> the grant it needs, from the client's own source."""
    found: dict[str, Grant] = {}
    for cls in API_CLASSES:
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            # The generated client builds each request in `_<method>_serialize`.
            if not (name.startswith("_") and name.endswith("_serialize")):
                continue
            match = re.search(r"method='(\w+)',\s*resource_path='([^']+)'", inspect.getsource(fn))
            grant = grant_of(match.group(2), match.group(1)) if match else None
            if grant is not None:
                found[name.removeprefix("_").removesuffix("_serialize")] = grant
    return found


def grant_of(path: str, method: str) -> Grant | None:
    """'/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale', 'PATCH' ->
    ('apps', 'deployments/scale', 'patch'); None for discovery paths."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:2] == ["namespaces", "{namespace}"] and len(rest) > 2:
        rest = rest[2:]
    if not rest:
        return None  # API discovery, not a resource
    resource = rest[0]
    named = len(rest) > 1 and rest[1] == "{name}"
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    if method == "GET":
        return group, resource, "get" if named else "list"
    return group, resource, HTTP_VERBS[method]


def _files(pattern: str) -> list[Path]:
    return sorted(AIOPS.glob(pattern))


def _attribute_calls(node: ast.AST) -> set[str]:
    return {
        n.func.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }


def _class(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise AssertionError(f"{path.relative_to(REPO)} has no class {name}")


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def _attribute_names(node: ast.AST) -> set[str]:
    """Every attribute named, called or not: the executor passes API methods to the wrapper
    that calls them with a timeout (`self._call(..., self.apps.read_namespaced_deployment)`)."""
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _api_grants(node: ast.AST, where: str, why: dict[Grant, set[str]]) -> set[Grant]:
    grants = set()
    for call in _attribute_names(node):
        if call in api_methods():
            grant = api_methods()[call]
            grants.add(grant)
            why.setdefault(grant, set()).add(f"{where}: {call}")
    return grants


@cache
def reader_calls() -> dict[str, frozenset[Grant]]:
    """KubernetesReader method -> the API calls it makes."""
    cls = _class(AIOPS / READER_SOURCE, READER_CLASS)
    return {
        name: frozenset(_api_grants(fn, name, {}))
        for name, fn in _methods(cls).items()
        if not name.startswith("_")
    }


def worker_needs() -> Needs:
    why: dict[Grant, set[str]] = {}
    grants: set[Grant] = set()
    for pattern in EXECUTOR_SOURCES:
        for path in _files(pattern):
            grants |= _api_grants(ast.parse(path.read_text()), str(path.relative_to(REPO)), why)
    port = _class(AIOPS / AGENT_PORT[0], AGENT_PORT[1])
    for method in _methods(port):
        assert method in reader_calls(), f"the agent's ClusterReader.{method} has no reader method"
        for grant in reader_calls()[method]:
            grants.add(grant)
            why.setdefault(grant, set()).add(f"agent ClusterReader.{method}")
    return Needs(frozenset(grants), frozenset({"playbooks_dir", "policies_dir", "state_dir"}), why)


@dataclass(frozen=True)
class Tool:
    name: str
    where: str
    reader_methods: frozenset[str]
    files: frozenset[str]


def mcp_tools() -> list[Tool]:
    """Every function registered as a tool in aiops/mcp: decorated with `@<server>.tool(...)`,
    or passed to `<server>.tool(fn, ...)` (directly or from a loop over a tuple of functions)."""
    tools = []
    for path in _files(MCP_SOURCES):
        module = ast.parse(path.read_text())
        functions = {
            node.name: node
            for node in ast.walk(module)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        for name in sorted(_registered_tools(module, functions)):
            node = functions[name]
            calls = _attribute_calls(node)
            files = {"playbooks_dir"} if "playbooks" in calls else set()
            files |= {"policies_dir"} if "policy" in calls else set()
            tools.append(
                Tool(
                    name=node.name,
                    where=f"{path.relative_to(REPO)}:{node.lineno}",
                    reader_methods=frozenset(calls & set(reader_calls())),
                    files=frozenset(files),
                )
            )
    return tools


def _registered_tools(module: ast.Module, functions: dict[str, ast.AST]) -> set[str]:
    names = {
        fn.name
        for fn in functions.values()
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_tool_decorator(d) for d in fn.decorator_list)
    }
    loops = {
        loop.target.id: loop.iter
        for loop in ast.walk(module)
        if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name)
    }
    for call in ast.walk(module):
        if not (isinstance(call, ast.Call) and _is_tool_decorator(call) and call.args):
            continue
        first = call.args[0]
        if not isinstance(first, ast.Name):
            continue
        if first.id in functions:
            names.add(first.id)
        elif isinstance(loops.get(first.id), ast.Tuple | ast.List):
            items = loops[first.id].elts  # type: ignore[union-attr]
            names |= {e.id for e in items if isinstance(e, ast.Name) and e.id in functions}
    return names


def _is_tool_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr == "tool"


def mcp_needs() -> Needs:
    why: dict[Grant, set[str]] = {}
    grants: set[Grant] = set()
    files: set[str] = set()
    for tool in mcp_tools():
        files |= tool.files
        for method in tool.reader_methods:
            for grant in reader_calls()[method]:
                grants.add(grant)
                why.setdefault(grant, set()).add(f"MCP tool {tool.name} ({method})")
    return Needs(frozenset(grants), frozenset(files), why)


def signing_keys(name: str) -> frozenset[str]:
    """The front-door keys the process's code reads (`signing.mcp_key`, ...)."""
    found: set[str] = set()
    for pattern in PROCESS_SOURCES[name]:
        for path in _files(pattern):
            found |= set(re.findall(r"\bsigning\.(\w+_key)\b", path.read_text()))
    return frozenset(found - {"cli_key"})


def process_needs() -> dict[str, Needs]:
    """ServiceAccount/Deployment name -> what its process needs."""
    needs = {
        "aiops-worker": worker_needs(),
        "aiops-mcp": mcp_needs(),
        # load_rules at start: incidents open with the rules in force.
        "aiops-webhook": Needs(files=frozenset({"playbooks_dir", "policies_dir"})),
        # Who may approve is the workflow's to say: the app reads no policy.
        "aiops-slack": Needs(),
    }
    return {name: replace(n, keys=signing_keys(name)) for name, n in needs.items()}

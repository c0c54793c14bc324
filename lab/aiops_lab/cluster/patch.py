"""The three patch formats the apiserver accepts for built-in types.

- JSON merge patch (RFC 7386): maps merge recursively, `null` deletes, lists are replaced.
- Strategic merge patch: as merge patch, except that lists of objects with a merge key in the
  Kubernetes schema (containers by name, env by name, ...) are merged element by element, and the
  `$patch` / `$setElementOrder` / `$retainKeys` / `$deleteFromPrimitiveList` directives kubectl
  sends are understood. The merge keys are those of the fields the lab serves.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.
"""

from __future__ import annotations

import copy
from typing import Any

from aiops_lab.cluster.errors import BadRequestError, InvalidError, UnsupportedMediaTypeError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# patchMergeKey of list fields in the Kubernetes OpenAPI schema (for the kinds the lab serves).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "ports": "containerPort",
}
# Lists of scalars with patchStrategy "merge" (union instead of replace).
_MERGE_PRIMITIVE_LISTS = frozenset({"finalizers"})


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Return a patched copy of `target`; the original is untouched."""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise BadRequestError("a JSON patch must be a list of operations")
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise BadRequestError(f"a {media} body must be a JSON object")
    if media == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif media == STRATEGIC_MERGE_PATCH:
        result = strategic_merge_patch(target, patch)
    else:
        raise UnsupportedMediaTypeError(
            f"the lab API does not support the patch type {media!r}; use {STRATEGIC_MERGE_PATCH}, "
            f"{MERGE_PATCH} or {JSON_PATCH}"
        )
    if not isinstance(result, dict):
        raise BadRequestError("the patch did not produce an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys", "$patch")):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            drop = set(value or [])
            result[name] = [v for v in result.get(name) or [] if v not in drop]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if field in _MERGE_PRIMITIVE_LISTS:
        merged = list(current or [])
        merged.extend(v for v in patch if v not in merged)
        return merged
    key = _MERGE_KEYS.get(field)
    if key is None or not isinstance(current, list):
        return [v for v in copy.deepcopy(patch) if not (isinstance(v, dict) and "$patch" in v)]
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise BadRequestError(
                f"strategic merge patch of {field}: every item needs its key {key!r}"
            )
        index = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge_patch({}, item, field))
        else:
            result[index] = strategic_merge_patch(result[index], item, field)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequestError(f"JSON patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise InvalidError(f"JSON patch: the path {path!r} does not exist")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise InvalidError(f"JSON patch: the path {path!r} does not exist")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise InvalidError(f"JSON patch: cannot remove {path!r}: it does not exist")


def _add(doc: Any, path: str, value: Any, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise InvalidError(f"JSON patch: cannot replace {path!r}: it does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise InvalidError(f"JSON patch: index in {path!r} is out of range")
    else:
        raise InvalidError(f"JSON patch: the parent of {path!r} is not an object or a list")
    return doc


def json_patch(target: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    doc: Any = copy.deepcopy(target)
    for number, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequestError(f"JSON patch operation {number} needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace"):
            if "value" not in op:
                raise BadRequestError(
                    f"JSON patch operation {number} ({kind} {path}) needs a 'value'"
                )
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=kind == "replace")
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            value = _get(doc, op.get("from", ""))
            if kind == "move":
                _remove(doc, op["from"])
            doc = _add(doc, path, copy.deepcopy(value), replace=False)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise InvalidError(f"JSON patch test failed at {path!r}")
        else:
            raise BadRequestError(
                f"unknown JSON patch operation {kind!r} (use add, remove, replace, move, copy or "
                "test)"
            )
    if not isinstance(doc, dict):
        raise BadRequestError("the JSON patch did not produce an object")
    return doc

"""The three patch formats the apiserver accepts for built-in types.

- JSON merge patch (RFC 7386): maps merge recursively, `null` deletes, lists are replaced.
- Strategic merge patch: as merge patch, except that lists of objects with a merge key in the
  Kubernetes schema (containers by name, env by name, ...) are merged element by element, and the
  `$patch` / `$setElementOrder` / `$retainKeys` / `$deleteFromPrimitiveList` directives kubectl
  sends are understood. The merge keys are those of the fields the lab serves.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test, applied by `jsonpatch`; its
  errors become the apiserver's (400 for a malformed patch, 422 when it does not apply).

The two merge patches are ours: no library in the lock does either with these semantics.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

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


def json_patch(target: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply a JSON patch with `jsonpatch`, answering as the apiserver does: a malformed patch is
    400 (nothing applied), an operation that cannot apply to this object is 422."""
    patches = [_parse_operation(number, op) for number, op in enumerate(ops)]
    doc: Any = copy.deepcopy(target)
    for number, (op, patch) in enumerate(zip(ops, patches, strict=True)):
        try:
            doc = patch.apply(doc, in_place=True)
        except jsonpatch.InvalidJsonPatch as exc:  # e.g. no 'value': found only when applied
            raise BadRequestError(f"JSON patch operation {number} is invalid: {exc}") from exc
        except jsonpatch.JsonPatchTestFailed as exc:
            # Not the library's text: it prints both values, which may be whole objects.
            raise InvalidError(
                f"JSON patch test failed at {op['path']!r} (operation {number})"
            ) from exc
        except (jsonpatch.JsonPatchPathNotFound, jsonpatch.JsonPointerException) as exc:
            # jsonpointer's text would print the whole document it searched.
            raise InvalidError(
                f"JSON patch operation {number} ({_describe(op)}): the path does not exist"
            ) from exc
        except jsonpatch.JsonPatchConflict as exc:
            raise InvalidError(f"JSON patch operation {number} ({_describe(op)}): {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequestError("the JSON patch did not produce an object")
    return doc


def _parse_operation(number: int, op: Any) -> jsonpatch.JsonPatch:
    """One operation, checked before any is applied; `from` too (jsonpatch parses it late)."""
    try:
        patch = jsonpatch.JsonPatch([op])
        if op["op"] in ("move", "copy") and isinstance(op.get("from"), str):
            jsonpointer.JsonPointer(op["from"])
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as exc:
        kind = op.get("op") if isinstance(op, dict) else None
        if isinstance(kind, str) and kind not in jsonpatch.JsonPatch.operations:
            *others, last = sorted(jsonpatch.JsonPatch.operations)
            raise BadRequestError(
                f"unknown JSON patch operation {kind!r} in operation {number} "
                f"(use {', '.join(others)} or {last})"
            ) from exc
        raise BadRequestError(f"JSON patch operation {number} is invalid: {exc}") from exc
    return patch


def _describe(op: dict[str, Any]) -> str:
    if "from" in op:
        return f"{op['op']} from {op['from']} to {op['path']}"
    return f"{op['op']} {op['path']}"

"""Patch formats and selectors with the apiserver's semantics, including their error messages."""

from __future__ import annotations

import pytest
from aiops_lab.cluster.errors import BadRequestError, InvalidError, UnsupportedMediaTypeError
from aiops_lab.cluster.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
)
from aiops_lab.cluster.quantity import parse_quantity
from aiops_lab.cluster.selectors import (
    parse_field_selector,
    parse_label_selector,
    selector_to_matcher,
    selector_to_string,
)

POD_TEMPLATE = {
    "metadata": {"annotations": {"a": "1", "b": "2"}},
    "spec": {
        "containers": [
            {"name": "server", "image": "s:v1", "env": [{"name": "X", "value": "1"}]},
            {"name": "sidecar", "image": "p:v1"},
        ],
        "tolerations": [{"key": "t1"}],
    },
}


def test_merge_patch_replaces_lists_and_null_deletes() -> None:
    out = apply_patch(
        POD_TEMPLATE,
        {
            "metadata": {"annotations": {"a": None, "c": "3"}},
            "spec": {"tolerations": [{"key": "t2"}]},
        },
        MERGE_PATCH,
    )
    assert out["metadata"]["annotations"] == {"b": "2", "c": "3"}
    assert out["spec"]["tolerations"] == [{"key": "t2"}]
    assert POD_TEMPLATE["metadata"]["annotations"] == {"a": "1", "b": "2"}  # input untouched
    containers = apply_patch(
        POD_TEMPLATE, {"spec": {"containers": [{"name": "server"}]}}, MERGE_PATCH
    )["spec"]["containers"]
    assert containers == [{"name": "server"}]  # merge patch replaces whole lists


def test_strategic_merge_patch_merges_by_key_and_honours_directives() -> None:
    out = apply_patch(
        POD_TEMPLATE,
        {
            "spec": {
                "containers": [
                    {"name": "server", "env": [{"name": "Y", "value": "2"}]},
                    {"name": "sidecar", "$patch": "delete"},
                    {"name": "new", "image": "n:v1"},
                ],
                "$setElementOrder/containers": [{"name": "server"}],
            }
        },
        STRATEGIC_MERGE_PATCH,
    )
    server, new = out["spec"]["containers"]
    assert server["image"] == "s:v1"
    assert server["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert new == {"name": "new", "image": "n:v1"}
    replaced = apply_patch(
        POD_TEMPLATE,
        {"metadata": {"annotations": {"$patch": "replace", "z": "9"}}},
        STRATEGIC_MERGE_PATCH,
    )
    assert replaced["metadata"]["annotations"] == {"z": "9"}


def test_json_patch_operations() -> None:
    out = apply_patch(
        POD_TEMPLATE,
        [
            {
                "op": "add",
                "path": "/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
                "value": "now",
            },
            {"op": "replace", "path": "/spec/containers/0/image", "value": "s:v2"},
            {"op": "remove", "path": "/spec/containers/1"},
            {"op": "copy", "from": "/metadata/annotations/a", "path": "/metadata/annotations/d"},
            {"op": "move", "from": "/metadata/annotations/b", "path": "/metadata/annotations/e"},
            {"op": "test", "path": "/spec/containers/0/name", "value": "server"},
            {"op": "add", "path": "/spec/tolerations/-", "value": {"key": "t3"}},
        ],
        JSON_PATCH,
    )
    assert out["metadata"]["annotations"] == {
        "a": "1",
        "kubectl.kubernetes.io/restartedAt": "now",
        "d": "1",
        "e": "2",
    }
    assert [c["image"] for c in out["spec"]["containers"]] == ["s:v2"]
    assert out["spec"]["tolerations"] == [{"key": "t1"}, {"key": "t3"}]
    with pytest.raises(InvalidError, match="test failed"):
        apply_patch(
            POD_TEMPLATE,
            [{"op": "test", "path": "/spec/containers/0/name", "value": "x"}],
            JSON_PATCH,
        )
    with pytest.raises(InvalidError, match="does not exist"):
        apply_patch(POD_TEMPLATE, [{"op": "replace", "path": "/nope/x", "value": 1}], JSON_PATCH)
    with pytest.raises(BadRequestError, match="unknown JSON patch operation"):
        apply_patch(POD_TEMPLATE, [{"op": "frobnicate", "path": "/a"}], JSON_PATCH)


@pytest.mark.parametrize(
    ("ops", "error", "message"),
    [
        # Malformed: 400, whatever the object holds.
        ([{"op": "add", "path": "/a"}], BadRequestError, "operation 0 is invalid: .*'value'"),
        ([{"path": "/a", "value": 1}], BadRequestError, "operation 0 is invalid: .*'op'"),
        ([{"op": "add", "value": 1}], BadRequestError, "operation 0 is invalid: .*'path'"),
        ([{"op": "add", "path": "a", "value": 1}], BadRequestError, "must start with /"),
        ([{"op": "copy", "from": "a", "path": "/b"}], BadRequestError, "must start with /"),
        (
            [{"op": "add", "path": "/x", "value": 1}, {"op": "frobnicate", "path": "/a"}],
            BadRequestError,
            "unknown JSON patch operation 'frobnicate' in operation 1 .*or test",
        ),
        # Does not apply to this object: 422.
        (
            [{"op": "remove", "path": "/spec/nope/x"}],
            InvalidError,
            "operation 0 .*does not exist",
        ),
        (
            [{"op": "move", "from": "/nope", "path": "/b"}],
            InvalidError,
            "operation 0 \\(move from /nope to /b\\): the path does not exist",
        ),
        (
            [{"op": "add", "path": "/spec/containers/9", "value": {}}],
            InvalidError,
            "operation 0 .*outside of list",
        ),
        ([{"op": "test", "path": "/spec/nope", "value": 1}], InvalidError, "test failed"),
    ],
)
def test_json_patch_errors_are_the_apiservers(
    ops: list[dict[str, object]], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        apply_patch(POD_TEMPLATE, ops, JSON_PATCH)
    # The messages name the operation, never echo the object (it may be large or private).
    assert "sidecar" not in str(raised.value)


def test_unsupported_patch_type_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="strategic-merge-patch"):
        apply_patch(POD_TEMPLATE, {}, "application/apply-patch+yaml")


def test_label_selector_syntax() -> None:
    labels = {"app": "cart", "tier": "backend", "canary": "true"}
    assert parse_label_selector("app=cart,tier==backend")(labels)
    assert parse_label_selector("app in (cart, web),canary")(labels)
    assert not parse_label_selector("app notin (cart)")(labels)
    assert not parse_label_selector("!canary")(labels)
    assert parse_label_selector("missing!=x")(labels)
    assert parse_label_selector("")(labels)
    with pytest.raises(BadRequestError, match="unable to parse requirement"):
        parse_label_selector("app=cart,===")


def test_structured_selectors_and_their_string_form() -> None:
    selector = {
        "matchLabels": {"app": "cart"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["backend"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    match = selector_to_matcher(selector)
    assert match({"app": "cart", "tier": "backend"})
    assert not match({"app": "cart", "tier": "backend", "legacy": "1"})
    text = selector_to_string(selector)
    assert text == "app=cart,tier in (backend),!legacy"
    assert parse_label_selector(text)({"app": "cart", "tier": "backend"})


def test_field_selector_allow_list() -> None:
    match = parse_field_selector(
        "spec.nodeName=node-a,status.phase!=Failed",
        frozenset({"spec.nodeName", "status.phase"}),
        "Pod",
    )
    assert match({"spec": {"nodeName": "node-a"}, "status": {"phase": "Running"}})
    assert not match({"spec": {"nodeName": "node-b"}, "status": {"phase": "Running"}})
    with pytest.raises(BadRequestError, match=r'field label not supported: "spec\.bogus"'):
        parse_field_selector("spec.bogus=1", frozenset({"spec.nodeName"}), "Pod")


def test_quantities() -> None:
    assert parse_quantity("250m") == pytest.approx(0.25)
    assert parse_quantity("128Mi") == 128 * 2**20
    assert parse_quantity("1G") == 1e9
    assert parse_quantity(2) == 2.0
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("12 cores")

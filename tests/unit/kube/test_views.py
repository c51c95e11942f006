"""kube.views: metadata read once, bad fields named, resourceVersion kept opaque."""

from __future__ import annotations

from typing import Any

import pytest

from kube import key_of
from kube.errors import InvalidObjectError
from kube.views import ListMeta, ObjectMeta, OwnerReference, name_of, version_of

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-7d4b9c-x2kq9",
        "generateName": "web-7d4b9c-",
        "namespace": "shop",
        "uid": "5b0e6f0c-3f0e-4c1a-9d7e-0c9f1b2a3d4e",
        "resourceVersion": "918273",
        "generation": 1,
        "creationTimestamp": "2025-01-02T03:04:05Z",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "annotations": {"kubernetes.io/psp": "restricted"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d4b9c",
                "uid": "0f0e",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "finalizers": ["example.com/hold"],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
    },
    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
}


def test_object_meta_reads_an_api_server_pod() -> None:
    meta = ObjectMeta.of(POD)
    assert meta.name == "web-7d4b9c-x2kq9"
    assert meta.namespace == "shop"
    assert meta.key == ("shop", "web-7d4b9c-x2kq9")
    assert meta.uid == "5b0e6f0c-3f0e-4c1a-9d7e-0c9f1b2a3d4e"
    assert meta.resource_version == "918273"
    assert meta.generation == 1
    assert meta.labels == {"app": "web", "pod-template-hash": "7d4b9c"}
    assert meta.annotations == {"kubernetes.io/psp": "restricted"}
    assert meta.owner_references == (
        OwnerReference("apps/v1", "ReplicaSet", "web-7d4b9c", "0f0e", True, True),
    )
    assert meta.finalizers == ("example.com/hold",)
    assert meta.creation_timestamp == "2025-01-02T03:04:05Z"
    assert not meta.deleting


def test_absent_metadata_is_kubernetes_zero_values() -> None:
    meta = ObjectMeta.of({"kind": "Node"})
    assert meta == ObjectMeta()
    assert meta.key == ("", "")
    assert meta.generation is None
    deleting = ObjectMeta.of({"metadata": {"deletionTimestamp": "2025-01-02T03:04:05Z"}})
    assert deleting.deleting


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ("not a map", "metadata"),
        ({"name": 7}, "metadata.name"),
        ({"labels": {"app": 1}}, "metadata.labels.app"),
        ({"annotations": ["a"]}, "metadata.annotations"),
        ({"generation": "3"}, "metadata.generation"),
        ({"generation": True}, "metadata.generation"),
        ({"finalizers": "one"}, "metadata.finalizers"),
        ({"finalizers": ["ok", 2]}, "metadata.finalizers[1]"),
        ({"ownerReferences": [{"kind": 5}]}, "metadata.ownerReferences[0].kind"),
        ({"resourceVersion": 12}, "metadata.resourceVersion"),
    ],
)
def test_a_bad_field_is_named(metadata: Any, field: str) -> None:
    with pytest.raises(InvalidObjectError) as err:
        ObjectMeta.of({"metadata": metadata})
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert isinstance(err.value, ValueError)  # the informer retries on it, as on a torn line


def test_list_meta_reads_a_page() -> None:
    page = {"metadata": {"resourceVersion": "77", "continue": "tok", "remainingItemCount": 3}}
    assert ListMeta.of(page) == ListMeta(resource_version="77", continue_="tok")
    assert ListMeta.of({"items": []}) == ListMeta()


def test_name_and_version_of_never_raise() -> None:
    assert name_of(POD) == "web-7d4b9c-x2kq9"
    assert version_of(POD) == "918273"
    assert name_of({"metadata": {"name": "x", "labels": "broken"}}) == "x"
    assert name_of({"metadata": "broken"}) == ""
    assert name_of(["not", "an", "object"]) == ""
    assert version_of({"metadata": {"resourceVersion": 5}}) == ""


def test_informer_keys_come_from_the_view() -> None:
    assert key_of(POD) == ("shop", "web-7d4b9c-x2kq9")
    assert key_of({"metadata": {"name": "node-a"}}) == ("", "node-a")

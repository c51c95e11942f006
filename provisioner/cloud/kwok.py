"""The kwok cloud provider: "instances" are Node objects a cluster's kwok makes Ready.

Owns launching a NodeClaim as a Node annotated ``kwok.x-k8s.io/node: fake`` (kwok then fakes
its kubelet: Ready, leases, running pods), removing its startup (and unregistered) taints once
it is Ready (what a real node's agents do), deleting it (an instance whose Node is deleting is
terminated: NotFound from then on, while the Node waits for the drain's finalizer), and reading
such nodes back as instances. Instance types, offerings and prices are the packaged AWS
catalog's, so packing and cost behave as on AWS. The Node is named after its NodeClaim, which
makes a launch idempotent: a provisioner restarted halfway through a launch finds the node it
already made instead of making a second one.

A NodeClass's ``launchDelay`` makes each launch take that long before the Node appears, to
emulate a cloud API and boot time. It must not decide what to launch beyond the first option of
the claim's list that has an available offering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from kube import JSON, NODES, Api, ApiError, ConflictError, NotFoundError, ObjectMeta
from provisioner import labels as lbl
from provisioner.catalog import Catalog, InstanceType
from provisioner.claims import NodeClaimView
from provisioner.cloud.provider import Instance
from provisioner.errors import (
    CloudProviderError,
    InstanceNotFoundError,
    InsufficientCapacityError,
)
from provisioner.objects import (
    POOL_LABEL,
    is_true,
    launch_delay,
    resources_to_k8s,
    taints_to_k8s,
)
from provisioner.resources import Resources

__all__ = ["KWOK_ANNOTATION", "PRICE_LABEL", "KwokProvider"]

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
"""kwok manages (fakes the kubelet of) nodes with this annotation."""
PRICE_LABEL = "updraft.io/price"
"""USD/h of the offering a kwok node was launched as (a label so ``kubectl get -L`` shows it)."""
_SCHEME = "kwok://"


class KwokProvider:
    name = "kwok"

    def __init__(self, api: Api, catalog: Catalog | None = None) -> None:
        self._api = api
        self.catalog = catalog or Catalog.aws()

    async def create(
        self,
        claim: NodeClaimView,
        options: Sequence[InstanceType],
        *,
        nodeclass: Mapping[str, Any] | None,
    ) -> Instance:
        name = claim.name
        existing = await self._existing(name)
        if existing is not None:
            return existing
        for itype in options:
            offering = itype.cheapest(claim.requirements)
            if offering is None:
                continue
            node = self._node(claim, name, itype, offering.zone, offering.capacity_type)
            node["metadata"]["labels"][PRICE_LABEL] = f"{offering.price:g}"
            delay = launch_delay(nodeclass)
            if delay:
                await asyncio.sleep(delay)  # the emulated cloud API and boot, not a wait
            try:
                created = await self._api.create(NODES, node)
            except ConflictError:
                found = await self._existing(name)
                if found is None:
                    raise CloudProviderError(f"node {name} exists but cannot be read") from None
                return found
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
                raise CloudProviderError(f"creating node {name}: {e}") from e
            return _instance(created)
        names = ", ".join(t.name for t in options) or "none"
        raise InsufficientCapacityError(
            f"no available offering admitted by the NodeClaim among its instance types ({names})"
        )

    def _node(
        self, claim: NodeClaimView, name: str, itype: InstanceType, zone: str, ctype: str
    ) -> JSON:
        labels: dict[str, str] = {}
        labels.update(itype.requirements.single_values())
        labels.update(claim.requirements.single_values())
        labels.update(claim.meta.labels)
        labels.update(
            {
                lbl.INSTANCE_TYPE: itype.name,
                lbl.ZONE: zone,
                lbl.CAPACITY_TYPE: ctype,
                lbl.HOSTNAME: name,
            }
        )
        annotations = {
            k: v for k, v in claim.meta.annotations.items() if not k.startswith("updraft.io/")
        }
        key, value = KWOK_ANNOTATION
        annotations[key] = value
        taints = taints_to_k8s((*claim.taints, *claim.startup_taints))
        node: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"providerID": f"{_SCHEME}{name}"},
            "status": {
                "capacity": resources_to_k8s(itype.capacity),
                "allocatable": resources_to_k8s(itype.allocatable),
            },
        }
        if taints:
            node["spec"]["taints"] = taints
        return node

    async def _existing(self, name: str) -> Instance | None:
        try:
            node = await self._api.get(NODES, name)
        except NotFoundError:
            return None
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            raise CloudProviderError(f"reading node {name}: {e}") from e
        if not str((node.get("spec") or {}).get("providerID", "")).startswith(_SCHEME):
            raise CloudProviderError(f"node {name} exists and is not a kwok instance")
        return _instance(node)

    async def delete(self, claim: NodeClaimView) -> None:
        provider_id = claim.provider_id
        name = provider_id.removeprefix(_SCHEME) if provider_id else ""
        name = name or claim.name
        try:
            node = await self._api.get(NODES, name)
            if not str((node.get("spec") or {}).get("providerID", "")).startswith(_SCHEME):
                raise InstanceNotFoundError(f"node {name} is not a kwok instance")
            if ObjectMeta.of(node).deleting:
                raise InstanceNotFoundError(f"node {name} is terminated")
            await self._api.delete(NODES, name)
        except NotFoundError:
            raise InstanceNotFoundError(f"node {name} is gone") from None
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            raise CloudProviderError(f"deleting node {name}: {e}") from e

    async def get(self, provider_id: str) -> Instance:
        if not provider_id.startswith(_SCHEME):
            raise InstanceNotFoundError(f"{provider_id!r} is not a kwok provider ID")
        name = provider_id.removeprefix(_SCHEME)
        try:
            node = await self._api.get(NODES, name)
        except NotFoundError:
            raise InstanceNotFoundError(f"{provider_id} is gone") from None
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            raise CloudProviderError(f"reading node {name}: {e}") from e
        if ObjectMeta.of(node).deleting:
            raise InstanceNotFoundError(f"{provider_id} is terminated")
        return _instance(node)

    async def settle(self, claim: NodeClaimView, node: Mapping[str, Any]) -> None:
        """Once the Node is Ready, remove the claim's startup taints and the unregistered
        taint, as the daemons and kubelet of a real node would."""
        if not is_true(node, "Ready") or ObjectMeta.of(node).deleting:
            return
        drop = {t.key for t in claim.startup_taints} | {lbl.UNREGISTERED_TAINT}
        taints = list((node.get("spec") or {}).get("taints") or [])
        kept = [t for t in taints if t.get("key") not in drop]
        if len(kept) == len(taints):
            return
        meta = ObjectMeta.of(node)
        patch = {"metadata": {"resourceVersion": meta.resource_version}, "spec": {"taints": kept}}
        try:
            await self._api.patch(NODES, meta.name, patch)
        except (ConflictError, NotFoundError):
            return  # changed since we read it: the next pass redoes this from a fresh read
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            raise CloudProviderError(f"removing startup taints of node {meta.name}: {e}") from e

    async def list(self) -> list[Instance]:
        try:
            nodes, _ = await self._api.list(NODES, label_selector=POOL_LABEL)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            raise CloudProviderError(f"listing nodes: {e}") from e
        return [
            _instance(n)
            for n in nodes
            if str((n.get("spec") or {}).get("providerID", "")).startswith(_SCHEME)
        ]


def _instance(node: Mapping[str, Any]) -> Instance:
    meta = ObjectMeta.of(node)
    labels = meta.labels
    status = node.get("status") or {}
    try:
        price = float(labels.get(PRICE_LABEL, "0"))
    except ValueError:
        price = 0.0
    return Instance(
        provider_id=str((node.get("spec") or {}).get("providerID", "")),
        node_name=meta.name,
        instance_type=labels.get(lbl.INSTANCE_TYPE, ""),
        zone=labels.get(lbl.ZONE, ""),
        capacity_type=labels.get(lbl.CAPACITY_TYPE, ""),
        price=price,
        capacity=Resources.parse(status.get("capacity") or {}, field="status.capacity"),
        allocatable=Resources.parse(status.get("allocatable") or {}, field="status.allocatable"),
        labels=dict(labels),
    )

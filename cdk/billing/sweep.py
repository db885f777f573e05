"""Find and delete what still bills in a region, by the project's tags and by their source.

Billable leftovers: instances not terminated, spot requests that can still launch one (open, active,
and ``disabled``: what a persistent request of a stopped instance is left in), AMIs, Elastic IPs,
network interfaces, EBS volumes and snapshots. Besides what carries the tags, a resource counts when
it comes from one that does: an AMI made from a project instance (``SourceInstanceId``), a snapshot
of a project volume, of such an AMI or made by ``CreateImage`` of a project instance, a volume
attached to a project instance or restored from a project snapshot. Every describe call that
pages is paginated (``describe_addresses`` does not page). ``find_leftovers`` only reads;
``delete_leftovers`` removes them in :data:`DELETE_ORDER` (an AMI is deregistered before its
snapshots go).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdk.billing.prices import (
    PUBLIC_IPV4_USD_PER_HOUR,
    hourly_instance_usd,
    hourly_snapshot_usd,
    hourly_volume_usd,
)

LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
DELETE_ORDER = ["spot-request", "instance", "image", "elastic-ip", "network-interface", "volume", "snapshot"]
#: Spot request states that can still launch an instance (``disabled``: its instance was stopped).
LIVE_SPOT_STATES = ["open", "active", "disabled"]
_CREATE_IMAGE = re.compile(r"Created by CreateImage\((i-[0-9a-f]+)\)")
_FOR_IMAGE = re.compile(r"\bfor (ami-[0-9a-z]+)\b")


@dataclass(frozen=True)
class Leftover:
    """One billable resource: ``kind`` (see DELETE_ORDER), ``id``, ``state``, ``since`` (creation or
    launch time), ``detail`` (type/size), ``usd_per_hour`` (None when not in the price table)."""

    kind: str
    id: str
    state: str
    since: datetime | None
    detail: str
    usd_per_hour: float | None
    raw: dict[str, Any]


def tag_filters(tags: dict[str, str]) -> list[dict[str, Any]]:
    """EC2 ``Filters`` matching every tag in ``tags``.

    >>> tag_filters({"Project": "edgeyolo"})
    [{'Name': 'tag:Project', 'Values': ['edgeyolo']}]
    """
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]


def _name_tag(item: dict[str, Any]) -> str:
    return next((t["Value"] for t in item.get("Tags", []) if t["Key"] == "Name"), "")


def find_instances(ec2: Any, tags: dict[str, str]) -> list[Leftover]:
    """Tagged instances that are not terminated."""
    filters = [*tag_filters(tags), {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                state = inst["State"]["Name"]
                running = state in ("pending", "running")
                found.append(
                    Leftover(
                        kind="instance",
                        id=inst["InstanceId"],
                        state=state,
                        since=inst.get("LaunchTime"),
                        detail=" ".join(filter(None, [inst["InstanceType"], _name_tag(inst)])),
                        usd_per_hour=hourly_instance_usd(inst["InstanceType"]) if running else 0.0,
                        raw=inst,
                    )
                )
    return found


def find_spot_requests(ec2: Any, tags: dict[str, str]) -> list[Leftover]:
    """Tagged spot requests that can still launch an instance (:data:`LIVE_SPOT_STATES`)."""
    filters = [*tag_filters(tags), {"Name": "state", "Values": LIVE_SPOT_STATES}]
    return [
        Leftover(
            kind="spot-request",
            id=req["SpotInstanceRequestId"],
            state=req["State"],
            since=req.get("CreateTime"),
            detail=req.get("LaunchSpecification", {}).get("InstanceType", ""),
            usd_per_hour=0.0,
            raw=req,
        )
        for page in ec2.get_paginator("describe_spot_instance_requests").paginate(Filters=filters)
        for req in page["SpotInstanceRequests"]
    ]


def _pages(ec2: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [item for page in ec2.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _tagged(item: dict[str, Any], tags: dict[str, str]) -> bool:
    have = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
    return all(have.get(k) == v for k, v in tags.items())


def project_instance_ids(ec2: Any, tags: dict[str, str]) -> set[str]:
    """Ids of every tagged instance, terminated ones too (the sources of AMIs and snapshots)."""
    return {
        inst["InstanceId"]
        for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=tag_filters(tags))
        for inst in reservation["Instances"]
    }


def _image(img: dict[str, Any]) -> Leftover:
    return Leftover(
        kind="image",
        id=img["ImageId"],
        state=img.get("State", ""),
        since=None,
        detail=" ".join(filter(None, [img.get("Name", ""), f"from {img.get('SourceInstanceId', '?')}"])),
        usd_per_hour=0.0,  # its snapshots bill
        raw=img,
    )


def _volume(vol: dict[str, Any]) -> Leftover:
    return Leftover(
        kind="volume",
        id=vol["VolumeId"],
        state=vol["State"],
        since=vol.get("CreateTime"),
        detail=f"{vol['Size']} GiB {vol['VolumeType']}",
        usd_per_hour=hourly_volume_usd(vol["Size"], vol["VolumeType"]),
        raw=vol,
    )


def _snapshot(snap: dict[str, Any]) -> Leftover:
    return Leftover(
        kind="snapshot",
        id=snap["SnapshotId"],
        state=snap["State"],
        since=snap.get("StartTime"),
        detail=f"of {snap.get('VolumeSize', '?')} GiB volume",
        usd_per_hour=hourly_snapshot_usd(snap.get("VolumeSize", 0)),
        raw=snap,
    )


def find_storage(ec2: Any, tags: dict[str, str], instances: set[str]) -> list[Leftover]:
    """AMIs, volumes and snapshots that are tagged or come from the project's ``instances`` (see the
    module doc), images first."""
    images = [
        img
        for img in _pages(ec2, "describe_images", "Images", Owners=["self"])
        if _tagged(img, tags) or img.get("SourceInstanceId") in instances
    ]
    image_ids = {img["ImageId"] for img in images}
    image_snapshots = {
        m["Ebs"]["SnapshotId"] for img in images for m in img.get("BlockDeviceMappings", []) if "Ebs" in m
    }
    volumes = _pages(ec2, "describe_volumes", "Volumes")
    own_volumes = {
        v["VolumeId"]
        for v in volumes
        if _tagged(v, tags) or any(a.get("InstanceId") in instances for a in v.get("Attachments", []))
    }

    def own_snapshot(snap: dict[str, Any]) -> bool:
        made_by = _CREATE_IMAGE.search(snap.get("Description", ""))
        made_for = _FOR_IMAGE.search(snap.get("Description", ""))
        return (
            _tagged(snap, tags)
            or snap.get("VolumeId") in own_volumes
            or snap["SnapshotId"] in image_snapshots
            or (made_for is not None and made_for.group(1) in image_ids)
            or (made_by is not None and made_by.group(1) in instances)
        )

    snapshots = [
        s for s in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]) if own_snapshot(s)
    ]
    snapshot_ids = {snap["SnapshotId"] for snap in snapshots}
    found = [_image(img) for img in images]
    found += [
        _volume(v) for v in volumes if v["VolumeId"] in own_volumes or v.get("SnapshotId") in snapshot_ids
    ]
    found += [_snapshot(snap) for snap in snapshots]
    return found


def find_leftovers(ec2: Any, tags: dict[str, str]) -> list[Leftover]:
    """Every billable resource of the project in the client's region, in DELETE_ORDER."""
    filters = tag_filters(tags)
    found: list[Leftover] = find_spot_requests(ec2, tags)
    found += find_instances(ec2, tags)
    for addr in ec2.describe_addresses(Filters=filters)["Addresses"]:  # not paged by the API
        found.append(
            Leftover(
                kind="elastic-ip",
                id=addr["AllocationId"],
                state="associated" if addr.get("AssociationId") else "unassociated",
                since=None,
                detail=addr.get("PublicIp", ""),
                usd_per_hour=PUBLIC_IPV4_USD_PER_HOUR,
                raw=addr,
            )
        )
    for eni in _pages(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters):
        found.append(
            Leftover(
                kind="network-interface",
                id=eni["NetworkInterfaceId"],
                state=eni["Status"],
                since=None,
                detail=eni.get("Description", ""),
                usd_per_hour=0.0,
                raw=eni,
            )
        )
    found += find_storage(ec2, tags, project_instance_ids(ec2, tags))
    return sorted(found, key=lambda item: DELETE_ORDER.index(item.kind))


def wait_until(done: Callable[[], bool], what: str, timeout: float, poll: float = 2.0) -> bool:
    """Poll ``done`` until it is true or ``timeout`` seconds pass, printing elapsed time; True if done."""
    start = time.monotonic()
    while not done():
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            print(f"  {what}: still not done after {elapsed:.0f} s", file=sys.stderr)
            return False
        print(f"  {what}: {elapsed:.0f} s / up to {timeout:.0f} s", file=sys.stderr)
        time.sleep(min(poll * (1 + elapsed / 30), 15.0))
    return True


def _by_kind(items: Iterable[Leftover], kind: str) -> list[Leftover]:
    return [x for x in items if x.kind == kind]


def request_instances(requests: Iterable[Leftover]) -> set[str]:
    """Ids of the instances the spot ``requests`` launched (tagged or not)."""
    return {str(r.raw["InstanceId"]) for r in requests if r.raw.get("InstanceId")}


def terminate_instances(ec2: Any, ids: list[str], timeout: float) -> list[str]:
    """Terminate ``ids`` and wait until they are; one line per failure (empty when all went)."""
    from botocore.exceptions import ClientError

    if not ids:
        return []
    try:
        ec2.terminate_instances(InstanceIds=ids)
    except ClientError as exc:
        return [f"instances {', '.join(ids)}: {exc.response.get('Error', {}).get('Message', exc)}"]
    print(f"  terminating {', '.join(ids)}", file=sys.stderr)

    def all_terminated() -> bool:
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["State"]["Name"] for r in reservations for i in r["Instances"]} <= {"terminated"}

    if not wait_until(all_terminated, "waiting for instances to terminate", timeout):
        return [f"instances {', '.join(ids)}: not terminated after {timeout:.0f} s"]
    return []


def cancel_spot_requests(ec2: Any, requests: list[Leftover]) -> list[str]:
    """Cancel ``requests``; one line per failure (empty when they are cancelled).

    Teardown does this before deleting the training stack: a persistent request whose instance is
    terminated would otherwise launch a new one.
    """
    from botocore.exceptions import ClientError

    if not requests:
        return []
    ids = [r.id for r in requests]
    try:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=ids)
    except ClientError as exc:
        return [f"spot requests {', '.join(ids)}: {exc.response.get('Error', {}).get('Message', exc)}"]
    print(f"  cancelled spot requests {', '.join(ids)}", file=sys.stderr)
    return []


def delete_leftovers(ec2: Any, leftovers: list[Leftover], timeout: float) -> list[str]:
    """Delete ``leftovers`` in dependency order; returns one line per failure (empty when all went)."""
    from botocore.exceptions import ClientError

    failures: list[str] = []

    def attempt(item: Leftover, action: Callable[[], object]) -> None:
        try:
            action()
            print(f"  deleted {item.kind} {item.id}", file=sys.stderr)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code", "").endswith("NotFound"):  # went with its instance
                print(f"  {item.kind} {item.id} already gone", file=sys.stderr)
                return
            failures.append(f"{item.kind} {item.id}: {error.get('Message', exc)}")

    requests = _by_kind(leftovers, "spot-request")
    failures += cancel_spot_requests(ec2, requests)
    # A persistent request may have launched a replacement (untagged: the launch template tags only
    # the request and the interface), so the request's own instance goes too.
    ids = {i.id for i in _by_kind(leftovers, "instance")} | request_instances(requests)
    failures += terminate_instances(ec2, sorted(ids), timeout)
    for image in _by_kind(leftovers, "image"):
        attempt(image, lambda i=image: ec2.deregister_image(ImageId=i.id))
    for addr in _by_kind(leftovers, "elastic-ip"):
        if addr.raw.get("AssociationId"):
            attempt(addr, lambda a=addr: ec2.disassociate_address(AssociationId=a.raw["AssociationId"]))
        attempt(addr, lambda a=addr: ec2.release_address(AllocationId=a.id))
    for eni in _by_kind(leftovers, "network-interface"):
        attempt(eni, lambda e=eni: ec2.delete_network_interface(NetworkInterfaceId=e.id))
    for vol in _by_kind(leftovers, "volume"):
        attempt(vol, lambda v=vol: ec2.delete_volume(VolumeId=v.id))
    for snap in _by_kind(leftovers, "snapshot"):
        attempt(snap, lambda s=snap: ec2.delete_snapshot(SnapshotId=s.id))
    return failures


def leftover_rows(leftovers: list[Leftover]) -> list[list[str]]:
    """Table rows: kind, id, state, since, detail, $/h."""
    rows = []
    for item in leftovers:
        since = item.since.strftime("%Y-%m-%d %H:%M UTC") if item.since else ""
        cost = "n/a" if item.usd_per_hour is None else f"{item.usd_per_hour:.4f}"
        rows.append([item.kind, item.id, item.state, since, item.detail, cost])
    return rows


LEFTOVER_HEADERS = ["kind", "id", "state", "since", "detail", "$/h"]

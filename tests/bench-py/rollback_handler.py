"""Reference: selfheal's half-brick rollback as a Python Lambda handler.

Written the way a team would write it with the official `kubernetes` client
(PyPI), for the handler benchmark (docs/benchmarks.md): the same API calls as
the Rust `rollback` function (docs/kubectl-semantics.md §7: GET the Deployment, LIST its
ReplicaSets by selector, one JSON Patch that `test`s and `replace`s only the
offending container's image, plus the audit Event), so the comparison is about
runtime and client cost, not about doing less work.

Run as a fresh interpreter per invocation (a cold start):
    SELFHEAL_KUBECONFIG=kubeconfig python rollback_handler.py request.json
prints the outcome JSON on stdout; exits 1 with a message on a refusal/error.
"""

import datetime
import json
import os
import sys

from kubernetes import client, config

REVISION = "deployment.kubernetes.io/revision"
LAST = "selfheal.dev/last-remediation"
BAD = "selfheal.dev/bad-images"


def _images(template):
    return {c.name: c.image for c in template.spec.containers}


def _escape(key):
    return key.replace("~", "~0").replace("/", "~1")


def handler(event, _context=None):
    """Rolls back only the containers whose image changed in the last revision."""
    target = event["target"]
    ns, name = target["namespace"], target["deployment"]
    apps = client.AppsV1Api()

    deploy = apps.read_namespaced_deployment(name, ns)
    labels = (deploy.metadata.labels or {})
    if labels.get("selfheal.dev/enabled") != "true":
        return {"status": "refused", "guard": "optIn"}
    if deploy.spec.paused:
        return {"status": "refused", "guard": "paused"}
    selector = ",".join(f"{k}={v}" for k, v in deploy.spec.selector.match_labels.items())
    rss = apps.list_namespaced_replica_set(ns, label_selector=selector).items
    owned = [
        rs for rs in rss
        if any(o.uid == deploy.metadata.uid and o.controller for o in (rs.metadata.owner_references or []))
    ]
    current_rev = int((deploy.metadata.annotations or {}).get(REVISION, "0"))
    older = sorted(
        (rs for rs in owned if int((rs.metadata.annotations or {}).get(REVISION, "0")) < current_rev),
        key=lambda rs: int(rs.metadata.annotations[REVISION]),
        reverse=True,
    )
    if not older:
        return {"status": "refused", "guard": "noPreviousImage"}
    current = _images(deploy.spec.template)
    previous = _images(older[0].spec.template)
    offending = [c for c, img in current.items() if c in previous and previous[c] != img]
    if target.get("container"):
        offending = [target["container"]]
    if not offending:
        return {"status": "refused", "guard": "noImageChange"}

    bad = json.loads((deploy.metadata.annotations or {}).get(BAD, "{}"))
    # The same guard prefix as the Rust planner: generation, then labels.
    ops, changes = [{"op": "test", "path": "/metadata/generation", "value": deploy.metadata.generation}], []
    if deploy.metadata.labels:
        ops.append({"op": "test", "path": "/metadata/labels", "value": deploy.metadata.labels})
    index = {c.name: i for i, c in enumerate(deploy.spec.template.spec.containers)}
    for container in offending:
        to = next(
            (
                _images(rs.spec.template).get(container)
                for rs in older
                if _images(rs.spec.template).get(container) not in (None, current[container])
                and _images(rs.spec.template).get(container) not in bad.get(container, [])
            ),
            None,
        )
        if to is None:
            return {"status": "refused", "guard": "noPreviousImage"}
        path = f"/spec/template/spec/containers/{index[container]}"
        ops += [
            {"op": "test", "path": f"{path}/name", "value": container},
            {"op": "test", "path": f"{path}/image", "value": current[container]},
            {"op": "replace", "path": f"{path}/image", "value": to},
        ]
        changes.append({"container": container, "from": current[container], "to": to})
        bad.setdefault(container, []).append(current[container])

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    audit = {"action": "rollback", "at": now, "execution": event.get("execution"), "changes": changes}
    if deploy.metadata.annotations is None:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    ops += [
        {"op": "add", "path": f"/metadata/annotations/{_escape(LAST)}", "value": json.dumps(audit)},
        {"op": "add", "path": f"/metadata/annotations/{_escape(BAD)}", "value": json.dumps(bad)},
    ]
    dry_run = "All" if event.get("dryRun") else None
    patched = apps.patch_namespaced_deployment(name, ns, ops, dry_run=dry_run)

    client.CoreV1Api().create_namespaced_event(ns, {
        "metadata": {"generateName": f"{name}."},
        "involvedObject": {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
            "namespace": ns, "uid": deploy.metadata.uid,
        },
        "reason": "SelfhealRollback",
        "message": ", ".join(f"{c['container']}: {c['from']} -> {c['to']}" for c in changes),
        "type": "Normal",
        "source": {"component": "selfheal"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
    return {
        "status": "applied",
        "action": "rollback",
        "changes": changes,
        "revision": {"before": current_rev},
        "generation": patched.metadata.generation,
    }


def main():
    config.load_kube_config(config_file=os.environ["SELFHEAL_KUBECONFIG"])
    with open(sys.argv[1], encoding="utf-8") as f:
        event = json.load(f)
    outcome = handler(event)
    print(json.dumps(outcome))
    return 0 if outcome["status"] == "applied" else 1


if __name__ == "__main__":
    sys.exit(main())

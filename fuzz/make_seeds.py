#!/usr/bin/env python3
"""Regenerate the seed corpora in fuzz/corpus/ and the planner bases in fuzz/bases/.

Seeds are the project's recorded fixtures (tests/fixtures/k8s for the API server,
crates/selfheal-events/tests/fixtures for CloudWatch and Alertmanager payloads) and
examples/, copied or cut into the input format of each target. The output is
committed; run this only when the fixtures change:  python3 fuzz/make_seeds.py
"""

import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
K8S_FIXTURES = ROOT / "tests/fixtures/k8s"
EVENT_FIXTURES = ROOT / "crates/selfheal-events/tests/fixtures"


def reset(directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def write(directory: Path, name: str, data) -> None:
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


def event_files():
    """Alarm/alert payloads recorded in the events crate's fixtures."""
    seen = {}
    for sub in ["cloudwatch", "alertmanager"]:
        for path in sorted((EVENT_FIXTURES / sub).glob("*.json")):
            data = path.read_bytes()
            seen.setdefault(hashlib.sha256(data).hexdigest(), (f"{sub}-{path.name}", data))
    return sorted(seen.values())


def request_files():
    return [(p.name, p.read_bytes()) for p in sorted((ROOT / "examples/requests").glob("*.json"))]


def k8s(name):
    return json.loads((K8S_FIXTURES / name).read_text())


def sequences(names, kinds, lists):
    """(label, object, [items of each list]) for each recorded GET of an object
    whose kind is in `kinds`, directly followed by LISTs of the `lists` kinds."""
    out = []
    for name in names:
        exchanges = k8s(name)["exchanges"]
        for i, exchange in enumerate(exchanges[: len(exchanges) - len(lists)]):
            body = exchange["response"]["body"]
            following = [e["response"]["body"] for e in exchanges[i + 1 : i + 1 + len(lists)]]
            if (
                exchange["request"]["method"] == "GET"
                and isinstance(body, dict)
                and body.get("kind") in kinds
                and all(isinstance(f, dict) and f.get("kind") == k for f, k in zip(following, lists))
            ):
                out.append((f"{name.removesuffix('.json')}-{i}", body, [f["items"] for f in following]))
    return out


def deployment_states():
    """(label, Deployment, [ReplicaSet]) pairs: each recorded GET of a Deployment
    followed by a LIST of its ReplicaSets."""
    names = [
        "create-and-history.json",
        "pause-resume-restart.json",
        "rollout-history.json",
        "json-patch-single-container.json",
        "status-progression.json",
    ]
    return [
        (label, body, [rs for rs in items if any(o.get("name") == body["metadata"]["name"] for o in rs["metadata"].get("ownerReferences", []))])
        for label, body, (items,) in sequences(names, ("Deployment",), ("ReplicaSetList",))
    ]


def workload_states():
    """(label, kind, StatefulSet/DaemonSet, [ControllerRevision], [Pod]) tuples:
    each recorded GET of a StatefulSet or DaemonSet followed by LISTs of its
    ControllerRevisions and pods."""
    names = [
        "statefulset-history.json",
        "statefulset-json-patch-single-container.json",
        "statefulset-partition-pause.json",
        "statefulset-kubectl.json",
        "daemonset-history.json",
        "daemonset-json-patch-single-container.json",
        "daemonset-kubectl.json",
    ]
    return [
        (label, body["kind"], body, revisions, pods)
        for label, body, (revisions, pods) in sequences(
            names, ("StatefulSet", "DaemonSet"), ("ControllerRevisionList", "PodList")
        )
    ]


def opted_in(deployment):
    d = json.loads(json.dumps(deployment))
    d["metadata"].setdefault("labels", {})["selfheal.dev/enabled"] = "true"
    return d


def main():
    # events_parse: every recorded payload and the manual request examples.
    corpus = reset(FUZZ / "corpus/events_parse")
    for name, data in event_files():
        write(corpus, name, data)
    for name, data in request_files():
        write(corpus, f"manual-{name}", data)

    # request_parse: the request examples and the design doc's example.
    corpus = reset(FUZZ / "corpus/request_parse")
    for name, data in request_files():
        write(corpus, name, data)

    # directive: alarm descriptions and annotations from the fixtures, plus the
    # directive forms docs/alarms.md §3 describes.
    corpus = reset(FUZZ / "corpus/directive")
    texts = set()
    for _, data in event_files():
        doc = json.loads(data)
        for pointer in [("detail", "configuration", "description"), ("alarmData", "configuration", "description")]:
            value = doc
            for key in pointer:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str):
                texts.add(value)
        for alert in doc.get("alerts", []):
            texts.update(v for v in alert.get("annotations", {}).values())
        for record in doc.get("Records", []):
            # strict=False: a recorded SNS Message may carry raw control characters.
            message = json.loads(record.get("Sns", {}).get("Message", "{}"), strict=False)
            if isinstance(message.get("AlarmDescription"), str):
                texts.add(message["AlarmDescription"])
    texts.update(
        [
            "selfheal: action=rollback namespace=shop deployment=checkout container=api",
            "Checkout 5xx above 5%.\nselfheal: action=pause dryRun=true approval=false",
            "selfheal: action=restart cluster=prod-eks namespace=shop pod=checkout-7f6945459f-abcde",
            "SELFHEAL: Action=Rollback namespace=shop deployment=checkout",
            "selfheal: action=rollback\nselfheal: action=pause",
            "action=resume namespace=shop deployment=checkout approval=true",
        ]
    )
    for i, text in enumerate(sorted(texts)):
        write(corpus, f"text-{i:02}", text)

    # snapshot_parse: the example snapshots, plus recorded objects as JSON lists.
    corpus = reset(FUZZ / "corpus/snapshot_parse")
    for example in ("checkout-snapshot.yaml", "ledger-snapshot.yaml", "node-agent-snapshot.yaml"):
        write(corpus, example, (ROOT / "examples" / example).read_bytes())
    states = deployment_states()
    for label, deployment, replica_sets in states[::3]:
        write(
            corpus,
            f"{label}.json",
            {"apiVersion": "v1", "kind": "List", "items": [opted_in(deployment), *replica_sets]},
        )
    label, deployment, replica_sets = states[-1]
    write(corpus, f"{label}-typed-list.json", {"apiVersion": "apps/v1", "kind": "ReplicaSetList", "items": [
        {k: v for k, v in rs.items() if k not in ("kind", "apiVersion")} for rs in replica_sets
    ]})

    # planners: JSON-mode cases (see fuzz/src/planners.rs), one request each,
    # rotating through the actions; the first three states are also the bases
    # the arbitrary mode mutates.
    corpus = reset(FUZZ / "corpus/planners")
    bases = reset(FUZZ / "bases")
    requests = [
        {"action": "rollback", "scope": "container"},
        {"action": "rollback", "scope": "template"},
        {"action": "rollback", "scope": "template", "toRevision": 1},
        {"action": "pause"},
        {"action": "resume"},
        {"action": "restart"},
    ]
    picks = {0: "create-and-history", 1: "pause-resume-restart", 2: "rollout-history"}
    chosen_bases = {}
    for i, (label, deployment, replica_sets) in enumerate(states):
        request = dict(requests[i % len(requests)])
        request["target"] = {
            "namespace": deployment["metadata"]["namespace"],
            "deployment": deployment["metadata"]["name"],
        }
        case = {
            "request": request,
            "deployment": opted_in(deployment),
            "replicaSets": replica_sets,
            "now": 1795723200,  # 2026-11-26T20:00:00Z
        }
        write(corpus, f"{label}.json", case)
        for key, prefix in picks.items():
            if label.startswith(prefix):
                chosen_bases[key] = case  # the last state of each scenario
    # StatefulSets and DaemonSets: the same requests on their recorded states;
    # the last state of each kind's history is a base too.
    for i, (label, kind, workload, revisions, pods) in enumerate(workload_states()):
        field = {"StatefulSet": "statefulSet", "DaemonSet": "daemonSet"}[kind]
        request = dict(requests[i % len(requests)])
        request["target"] = {"namespace": workload["metadata"]["namespace"], field: workload["metadata"]["name"]}
        case = {
            "request": request,
            field: workload,
            "controllerRevisions": revisions,
            "pods": pods,
            "now": 1795723200,
        }
        write(corpus, f"{label}.json", case)
        if label.startswith("statefulset-history"):
            chosen_bases[3] = case
        if label.startswith("daemonset-history"):
            chosen_bases[4] = case
    for key in sorted(chosen_bases):
        write(bases, f"base{key}.json", chosen_bases[key])


if __name__ == "__main__":
    main()

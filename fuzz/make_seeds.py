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


def deployment_states():
    """(label, Deployment, [ReplicaSet]) pairs: each recorded GET of a Deployment
    followed by a LIST of its ReplicaSets."""
    states = []
    for name in [
        "create-and-history.json",
        "pause-resume-restart.json",
        "rollout-history.json",
        "json-patch-single-container.json",
        "status-progression.json",
    ]:
        exchanges = k8s(name)["exchanges"]
        for i, exchange in enumerate(exchanges[:-1]):
            body = exchange["response"]["body"]
            following = exchanges[i + 1]["response"]["body"]
            if (
                exchange["request"]["method"] == "GET"
                and isinstance(body, dict)
                and body.get("kind") == "Deployment"
                and isinstance(following, dict)
                and following.get("kind") == "ReplicaSetList"
            ):
                dep_name = body["metadata"]["name"]
                owned = [
                    rs
                    for rs in following["items"]
                    if any(o.get("name") == dep_name for o in rs["metadata"].get("ownerReferences", []))
                ]
                states.append((f"{name.removesuffix('.json')}-{i}", body, owned))
    return states


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
            message = json.loads(record.get("Sns", {}).get("Message", "{}"))
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

    # snapshot_parse: the example snapshot, plus recorded objects as JSON lists.
    corpus = reset(FUZZ / "corpus/snapshot_parse")
    write(corpus, "checkout-snapshot.yaml", (ROOT / "examples/checkout-snapshot.yaml").read_bytes())
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
    for key in sorted(chosen_bases):
        write(bases, f"base{key}.json", chosen_bases[key])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fails when CloudWatch alarms would publish to an SNS topic they cannot use.

    .venv-sam/bin/python scripts/cfn-alarm-topics.py TEMPLATE

Why: a CloudWatch alarm's SNS action fails ("CloudWatch Alarms does not have
authorization to access the SNS topic encryption key", visible only in the
alarm history) when the topic is encrypted with the AWS managed key
`alias/aws/sns`, whose key policy cannot grant cloudwatch.amazonaws.com
kms:GenerateDataKey*/kms:Decrypt. Such a topic must be unencrypted or use a
customer managed key whose key policy allows that principal. Neither cfn-lint,
`sam validate` nor checkov knows this (checkov even asks for encryption).

An alarm topic is any AWS::SNS::Topic named in an AWS::CloudWatch::Alarm's
AlarmActions / OKActions / InsufficientDataActions, or one a topic policy lets
cloudwatch.amazonaws.com publish to. For each: no KmsMasterKeyId passes; a
KmsMasterKeyId referring to an AWS::KMS::Key (or AWS::KMS::Alias of one) of
this template passes when its KeyPolicy allows the cloudwatch.amazonaws.com
service principal kms:Decrypt and kms:GenerateDataKey*; anything else (an
AWS managed alias, a key from outside the template that cannot be checked)
fails. SAM templates are translated first (scripts/cfn-cycles.py).
Exit 0: fine; 1: problems (listed); 2: unreadable template.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import sys
from typing import Any

from checklib import report

_spec = importlib.util.spec_from_file_location(
    "cfn_cycles", os.path.join(os.path.dirname(os.path.abspath(__file__)), "cfn-cycles.py")
)
assert _spec is not None and _spec.loader is not None
cfn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cfn)

CLOUDWATCH = "cloudwatch.amazonaws.com"
ACTION_KEYS = ("AlarmActions", "OKActions", "InsufficientDataActions")
NEEDED_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [] if v is None else [v]


def names_cloudwatch(principal: Any) -> bool:
    if not isinstance(principal, dict):
        return False
    return any(str(s) == CLOUDWATCH for s in as_list(principal.get("Service")))


def alarm_topics(resources: dict[str, Any]) -> dict[str, str]:
    """Topic logical id -> why CloudWatch alarms publish to it."""
    topics = {rid for rid, r in resources.items() if r.get("Type") == "AWS::SNS::Topic"}
    found: dict[str, str] = {}
    for rid, r in resources.items():
        props = r.get("Properties") or {}
        if r.get("Type") == "AWS::CloudWatch::Alarm":
            for key in ACTION_KEYS:
                for target in cfn.refs(props.get(key), set()) & topics:
                    found.setdefault(target, f"{key} of alarm {rid}")
        elif r.get("Type") == "AWS::SNS::TopicPolicy":
            statements = as_list((props.get("PolicyDocument") or {}).get("Statement"))
            if any(st.get("Effect") == "Allow" and names_cloudwatch(st.get("Principal")) for st in statements):
                for target in cfn.refs(props.get("Topics"), set()) & topics:
                    found.setdefault(target, f"topic policy {rid} lets {CLOUDWATCH} publish")
    return found


def key_allows_cloudwatch(key: dict[str, Any]) -> bool:
    policy = (key.get("Properties") or {}).get("KeyPolicy") or {}
    allowed: list[str] = []
    for st in as_list(policy.get("Statement")):
        if st.get("Effect") == "Allow" and names_cloudwatch(st.get("Principal")):
            allowed += [str(a) for a in as_list(st.get("Action"))]
    return all(any(fnmatch.fnmatchcase(need, pattern) for pattern in allowed) for need in NEEDED_KMS_ACTIONS)


def problems(template: dict[str, Any]) -> tuple[list[str], int]:
    resources = template.get("Resources", {})
    topics = alarm_topics(resources)
    out = []
    for topic, why in sorted(topics.items()):
        key = (resources[topic].get("Properties") or {}).get("KmsMasterKeyId")
        if key is None:
            continue
        ids = [i for i in cfn.refs(key, set()) if i in resources]
        # An alias of this template points at its TargetKeyId.
        for i in list(ids):
            if resources[i].get("Type") == "AWS::KMS::Alias":
                ids += [t for t in cfn.refs(resources[i].get("Properties"), set()) if t in resources]
        keys = [i for i in ids if resources[i].get("Type") == "AWS::KMS::Key"]
        if keys and all(key_allows_cloudwatch(resources[k]) for k in keys):
            continue
        if keys:
            detail = f"key {', '.join(keys)} has no key policy statement allowing {CLOUDWATCH} kms:Decrypt and kms:GenerateDataKey*"
        else:
            detail = f"KmsMasterKeyId {key!r} is not a customer managed key of this template (alias/aws/sns cannot be used by alarms)"
        out.append(f"{topic} ({why}): {detail}")
    return out, len(topics)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: cfn-alarm-topics.py TEMPLATE", file=sys.stderr)
        return 2
    try:
        template = cfn.translate(cfn.load(argv[1]))
    except Exception as e:  # noqa: BLE001 - any reader/translator failure is a usage error here
        print(f"cfn-alarm-topics: cannot read or translate {argv[1]}: {e}", file=sys.stderr)
        return 2
    found, count = problems(template)
    return report(
        f"cfn-alarm-topics: {argv[1]}: CloudWatch alarms cannot publish to:",
        found,
        f"cfn-alarm-topics: {argv[1]}: {count} alarm topic(s), all usable by CloudWatch alarms",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))

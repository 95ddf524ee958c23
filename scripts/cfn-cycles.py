#!/usr/bin/env python3
"""Fails when a CloudFormation template has a circular dependency.

    .venv-sam/bin/python scripts/cfn-cycles.py TEMPLATE

Why: CloudFormation refuses a stack whose resources depend on each other in a
cycle ("Circular dependency between resources"), but neither cfn-lint nor
`sam validate --lint` reports it for a SAM template, because the edges only
appear after the SAM transform (a function's generated role, its Function
URL, the state machine's role...). So a template with the
`AWS::Serverless-2016-10-31` transform is first translated with the SAM
translator (samtranslator, installed with aws-sam-cli in .venv-sam), offline;
a plain template is checked as it is.

Edges are what CloudFormation orders creation by: `Ref`, `Fn::GetAtt`,
`Fn::Sub` (`${Res}` / `${Res.Attr}`, not `${!literal}` or its own variables)
anywhere in a resource except its Metadata, and `DependsOn`. Every strongly
connected component with more than one resource (or a resource that needs
itself) is reported with one concrete cycle. Exit 0: no cycle; 1: cycles
(listed); 2: the template could not be read or translated.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from typing import Any

SUB_VAR = re.compile(r"\$\{([^}]+)\}")


def load(path: str) -> dict[str, Any]:
    """YAML or JSON with CloudFormation's short tags (`!Ref`, `!Sub`, ...)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        from samcli.yamlhelper import yaml_parse
    except ImportError:
        # Without aws-sam-cli only JSON can be read.
        return json.loads(text)
    return yaml_parse(text)


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """The template CloudFormation would see after the SAM transform."""
    transforms = template.get("Transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if not any(str(t).startswith("AWS::Serverless") for t in transforms):
        return template

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    # The translator accepts only S3 locations for code and definitions (as
    # `sam validate` does, substitute placeholders: they create no edges).
    glob = sam.get("Globals", {}).get("Function", {})
    if "CodeUri" in glob:
        glob["CodeUri"] = "s3://placeholder/code.zip"
    for res in sam.get("Resources", {}).values():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://placeholder/code.zip"
        if res.get("Type") in (
            "AWS::Serverless::StateMachine",
            "AWS::Serverless::Api",
            "AWS::Serverless::HttpApi",
        ) and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = "s3://placeholder/definition.json"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=os.environ["AWS_DEFAULT_REGION"]),
    )
    # Managed policies are given as ARNs in this project: no IAM lookup needed.
    return translator.translate(sam_template=sam, parameter_values={}, get_managed_policy_map=lambda: {})


def refs(value: Any, out: set[str]) -> set[str]:
    """Every logical id (or parameter / pseudo parameter) `value` refers to."""
    if isinstance(value, list):
        for v in value:
            refs(v, out)
    elif isinstance(value, dict):
        for key, v in value.items():
            if key == "Ref" and isinstance(v, str):
                out.add(v)
            elif key == "Fn::GetAtt":
                if isinstance(v, list) and v and isinstance(v[0], str):
                    out.add(v[0])
                elif isinstance(v, str):
                    out.add(v.split(".", 1)[0])
                else:
                    refs(v, out)
            elif key == "Fn::Sub":
                text, variables = (v[0], v[1]) if isinstance(v, list) and len(v) == 2 else (v, {})
                if isinstance(text, str):
                    for name in SUB_VAR.findall(text):
                        if name.startswith("!"):
                            continue
                        base = name.split(".", 1)[0]
                        if isinstance(variables, dict) and name in variables:
                            continue
                        out.add(base)
                else:
                    refs(text, out)
                refs(variables, out)
            else:
                refs(v, out)
    return out


def graph(template: dict[str, Any]) -> dict[str, list[str]]:
    resources = template.get("Resources", {})
    edges: dict[str, list[str]] = {}
    for rid, res in resources.items():
        body = {k: v for k, v in res.items() if k not in ("Metadata", "DependsOn", "Type", "Condition")}
        deps = refs(body, set())
        depends_on = res.get("DependsOn", [])
        deps.update([depends_on] if isinstance(depends_on, str) else depends_on)
        edges[rid] = sorted(d for d in deps if d in resources)
    return edges


def components(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1 or node in edges[node]:
                    found.append(sorted(comp))
    return found


def one_cycle(edges: dict[str, list[str]], comp: list[str]) -> list[str]:
    """A concrete cycle inside one component, start == end (BFS back to the start)."""
    members = set(comp)
    start = comp[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in edges[node]:
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return comp


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = argv[1]
    try:
        template = translate(load(path))
    except Exception as e:  # noqa: BLE001 - any reader/translator failure is a usage error here
        print(f"cfn-cycles: cannot read or translate {path}: {e}", file=sys.stderr)
        return 2
    edges = graph(template)
    cycles = components(edges)
    if cycles:
        print(f"cfn-cycles: {path}: {len(cycles)} circular dependenc{'y' if len(cycles) == 1 else 'ies'}", file=sys.stderr)
        for comp in cycles:
            print(f"  cycle: {' -> '.join(one_cycle(edges, comp))}", file=sys.stderr)
            print(f"    (resources in it: {', '.join(comp)})", file=sys.stderr)
        return 1
    n_edges = sum(len(v) for v in edges.values())
    print(f"cfn-cycles: {path}: no circular dependency ({len(edges)} resources after transform, {n_edges} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

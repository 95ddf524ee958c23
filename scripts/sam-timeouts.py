#!/usr/bin/env python3
"""Checks the functions' Timeout against the state machines' Task timeouts and Retry budgets.

    .venv-sam/bin/python scripts/sam-timeouts.py [TEMPLATE]

Why: the sizes in template.yaml and the Retry blocks in statemachines/*.asl.json
are written in different files; this keeps them consistent. For every Task
state whose Resource is a `${XFunctionArn}` substitution of a state machine in
the template (directly or as `Parameters.FunctionName` of `lambda:invoke`):

1. the function's Timeout is below the state's TimeoutSeconds, so a state
   timeout never abandons a handler that is still running (it would keep
   patching the Deployment while the state machine moved on); the function
   ends first, as `Sandbox.Timedout`, which the definitions retry;
2. the worst case of its retries fits the budget: the first attempt and
   every retry of a retrier that catches errors of a running handler (its
   errorTypes, `Sandbox.Timedout`, `States.Timeout`, `States.TaskFailed`,
   `States.ALL`) each run to the function's Timeout, retries of `Lambda.*`
   invocation failures (the function never ran) take no time, and every
   backoff delay is at its maximum (IntervalSeconds x BackoffRate^n, capped
   by MaxDelaySeconds); the total stays within RETRY_BUDGET_S, the
   2.5 minutes the definitions promise for a single step. A Task that passes
   a watch budget (`Parameters.watch.budgetSeconds`, remediate-deployment's
   Verify) is the exception: its attempts share that budget (each watches
   only what is left of it), so its promise is the budget plus 2.5 minutes,
   and each attempt counts only what it does outside the watch, which is what
   any Kubernetes handler does within the Globals Timeout (25 s).

Exit 0: consistent (prints each Task's figures); 1: violations; 2: unreadable input.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from checklib import report

RETRY_BUDGET_S = 150
PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9]+)\}$")


def load_yaml(path: str) -> dict[str, Any]:
    from samcli.yamlhelper import yaml_parse

    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def tasks(states: dict[str, Any], prefix: str = ""):
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield prefix + name, state
        for branch in state.get("Branches", []):
            yield from tasks(branch.get("States", {}), f"{prefix}{name}/")
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from tasks(state[key].get("States", {}), f"{prefix}{name}/")


def function_placeholder(state: dict[str, Any]) -> str | None:
    """The `XFunctionArn` substitution a Task invokes, if any."""
    candidates = [state.get("Resource", "")]
    params = state.get("Parameters") or state.get("Arguments") or {}
    candidates += [params.get("FunctionName", ""), params.get("FunctionName.$", "")]
    for c in candidates:
        m = PLACEHOLDER.match(str(c))
        if m:
            return m.group(1)
    return None


def watch_budgeted(state: dict[str, Any]) -> bool:
    """Whether the Task's attempts share a watch budget (see the docstring)."""
    watch = (state.get("Parameters") or {}).get("watch")
    return isinstance(watch, dict) and ("budgetSeconds.$" in watch or "budgetSeconds" in watch)


def worst_case(retriers: list[dict[str, Any]], timeout: int) -> tuple[int, float]:
    """(attempts that run the handler, worst-case seconds) of one Task state."""
    running = 1
    delays = 0.0
    for r in retriers:
        n = int(r.get("MaxAttempts", 3))
        interval = float(r.get("IntervalSeconds", 1))
        rate = float(r.get("BackoffRate", 2.0))
        cap = r.get("MaxDelaySeconds")
        for k in range(n):
            d = interval * rate**k
            delays += min(d, float(cap)) if cap is not None else d
        if not all(str(e).startswith("Lambda.") for e in r.get("ErrorEquals", [])):
            running += n
    return running, running * timeout + delays


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "template.yaml"
    try:
        template = load_yaml(path)
    except Exception as e:  # noqa: BLE001
        print(f"sam-timeouts: cannot read {path}: {e}", file=sys.stderr)
        return 2
    base = os.path.dirname(os.path.abspath(path))
    glob = template.get("Globals", {}).get("Function", {})
    resources = template.get("Resources", {})
    timeouts = {
        rid: int((r.get("Properties") or {}).get("Timeout", glob.get("Timeout", 3)))
        for rid, r in resources.items()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    problems: list[str] = []
    lines: list[str] = []
    for rid, r in resources.items():
        if r.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = r.get("Properties") or {}
        subs = props.get("DefinitionSubstitutions") or {}
        try:
            with open(os.path.join(base, props["DefinitionUri"]), encoding="utf-8") as f:
                definition = json.load(f)
        except (KeyError, OSError, ValueError) as e:
            print(f"sam-timeouts: {rid}: cannot read its definition: {e}", file=sys.stderr)
            return 2
        for name, state in tasks(definition.get("States", {})):
            placeholder = function_placeholder(state)
            if placeholder is None:
                continue
            target = subs.get(placeholder)
            ref = target.get("Fn::GetAtt") if isinstance(target, dict) else None
            fn = (ref[0] if isinstance(ref, list) else str(ref).split(".")[0]) if ref else None
            if fn not in timeouts:
                problems.append(f"{rid}.{name}: ${{{placeholder}}} is not a function of the template")
                continue
            timeout = timeouts[fn]
            state_timeout = state.get("TimeoutSeconds")
            if ".waitForTaskToken" not in str(state.get("Resource", "")):
                if state_timeout is None:
                    problems.append(f"{rid}.{name}: no TimeoutSeconds (default 99999999 s) for {fn}")
                elif timeout >= int(state_timeout):
                    problems.append(
                        f"{rid}.{name}: {fn} Timeout {timeout} s is not below the state's TimeoutSeconds {state_timeout}"
                    )
            budgeted = watch_budgeted(state)
            per_run = int(glob.get("Timeout", 3)) if budgeted else timeout
            beyond = " beyond the watch budget" if budgeted else ""
            attempts, worst = worst_case(state.get("Retry", []), per_run)
            if worst > RETRY_BUDGET_S:
                problems.append(
                    f"{rid}.{name}: worst case {attempts} runs x {per_run} s + backoff = {worst:.0f} s{beyond} > {RETRY_BUDGET_S} s"
                )
            lines.append(
                f"  {rid}.{name}: {fn} Timeout {timeout} s < state {state_timeout or '-'} s; "
                f"worst case {attempts} runs + backoff = {worst:.0f} s{beyond} <= {RETRY_BUDGET_S} s"
            )
    return report(
        f"sam-timeouts: {path}: {len(problems)} problem(s)",
        problems,
        "\n".join([f"sam-timeouts: {path}: {len(lines)} Lambda tasks consistent", *lines]),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Copy a CloudFormation template (YAML with short-form tags, or JSON) with
some parameters' Default replaced: `set-defaults.py IN OUT NAME=VALUE ...`.

scripts/check-templates lints the copy, so the branches that optional
parameters switch on (InVpc) are checked with values. The rewrite is
textual for YAML (the tags stay as they are) and fails when a parameter or
its Default line is missing, so a renamed parameter cannot leave the check
running on the unchanged template."""
import json
import re
import sys


def main() -> int:
    src, dst, *pairs = sys.argv[1:]
    text = open(src, encoding="utf-8").read()
    for pair in pairs:
        name, value = pair.split("=", 1)
        if src.endswith(".json"):
            doc = json.loads(text)
            param = doc.get("Parameters", {}).get(name)
            if param is None:
                print(f"set-defaults: no parameter {name} in {src}", file=sys.stderr)
                return 1
            param["Default"] = value
            text = json.dumps(doc, indent=1)
            continue
        block = re.compile(
            rf"(^  {re.escape(name)}:\n(?:    .*\n)*?    Default: )[^\n]*$", re.M
        )
        text, count = block.subn(lambda m: m.group(1) + json.dumps(value), text, count=1)
        if count != 1:
            print(f"set-defaults: no Default for parameter {name} in {src}", file=sys.stderr)
            return 1
    with open(dst, "w", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

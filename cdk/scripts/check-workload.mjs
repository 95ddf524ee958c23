#!/usr/bin/env node
// Checks the workload-account template `cdk synth` wrote (bin/workload-account.ts)
// against ../deploy/workload-account.yaml: the two must be the same template
// (format version, description, parameters, resources, outputs; CDK's
// `aws:cdk:path` metadata aside), so the CDK construct and the CloudFormation
// snippet users deploy cannot drift apart.
//
//   node scripts/check-workload.mjs [CDK_OUT_DIR] [STACK_ID]
//
// Exit 1 with every difference listed; exit 0 prints a one-line summary.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import YAML from "yaml";

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = path.resolve(appDir, "..");
const outDir = path.resolve(process.argv[2] ?? path.join(appDir, "cdk.out", "workload"));
const stackId = process.argv[3] ?? "SelfhealWorkloadAccount";
const yamlFile = path.join(repoRoot, "deploy", "workload-account.yaml");

// CloudFormation's short forms (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) as the
// long forms a synthesized JSON template carries.
const INTRINSICS = ["Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub", "If", "Equals", "Not", "And", "Or"];
const customTags = [
  { tag: "!Ref", resolve: (v) => ({ Ref: v }) },
  { tag: "!Condition", resolve: (v) => ({ Condition: v }) },
  { tag: "!GetAtt", resolve: (v) => ({ "Fn::GetAtt": [v.slice(0, v.indexOf(".")), v.slice(v.indexOf(".") + 1)] }) },
  { tag: "!GetAtt", collection: "seq", resolve: (v) => ({ "Fn::GetAtt": v.toJSON() }) },
  ...INTRINSICS.flatMap((name) => [
    { tag: `!${name}`, resolve: (v) => ({ [`Fn::${name}`]: v }) },
    { tag: `!${name}`, collection: "seq", resolve: (v) => ({ [`Fn::${name}`]: v.toJSON() }) },
    { tag: `!${name}`, collection: "map", resolve: (v) => ({ [`Fn::${name}`]: v.toJSON() }) },
  ]),
];

/** JSON with object keys sorted, so that key order never counts. */
const canonical = (v) =>
  JSON.stringify(v, (_, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));

const fromYaml = YAML.parse(fs.readFileSync(yamlFile, "utf8"), { customTags });
const synthesized = JSON.parse(fs.readFileSync(path.join(outDir, `${stackId}.template.json`), "utf8"));
for (const resource of Object.values(synthesized.Resources ?? {})) {
  if (resource.Metadata) {
    delete resource.Metadata["aws:cdk:path"];
    if (Object.keys(resource.Metadata).length === 0) delete resource.Metadata;
  }
}

const failures = [];
const sections = new Set([...Object.keys(fromYaml), ...Object.keys(synthesized)]);
for (const section of [...sections].sort()) {
  const a = fromYaml[section];
  const b = synthesized[section];
  if (a && b && typeof a === "object" && typeof b === "object") {
    for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (canonical(a[name]) !== canonical(b[name])) {
        failures.push(`${section}.${name}: workload-account.yaml ${canonical(a[name])}, CDK ${canonical(b[name])}`);
      }
    }
  } else if (canonical(a) !== canonical(b)) {
    failures.push(`${section}: workload-account.yaml ${canonical(a)}, CDK ${canonical(b)}`);
  }
}

if (failures.length > 0) {
  console.error(`workload-account check: ${failures.length} difference(s) between ${yamlFile} and the synthesized ${stackId}`);
  for (const f of failures) console.error(`  - ${f}`);
  process.exit(1);
}
const count = (s) => Object.keys(synthesized[s] ?? {}).length;
console.log(
  `workload-account check: ok (${stackId} is deploy/workload-account.yaml: ${count("Parameters")} parameters, ${count("Resources")} resources, ${count("Outputs")} outputs)`,
);

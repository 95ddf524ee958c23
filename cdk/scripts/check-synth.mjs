#!/usr/bin/env node
// Checks the template `cdk synth` wrote (no test framework: plain asserts).
//
//   node scripts/check-synth.mjs [CDK_OUT_DIR] [STACK_ID]
//
// What it asserts, and why:
// - resource counts: 2 state machines, one Lambda function per `functions/*`
//   package (every cargo-lambda binary is deployed), 1 EventBridge rule,
//   1 EKS access entry, 2 Function URLs (webhook, approval);
// - every function: provided.al2023, arm64, handler `bootstrap`;
// - each state machine's definition is the *same bytes* as its
//   `statemachines/*.asl.json` (asset, not a copy), and its
//   DefinitionSubstitutions fill exactly the `${...}` placeholders of that file;
// - least privilege: no IAM statement grants eks:* or states:* actions on
//   `Resource: "*"` (or through NotResource / NotAction);
// - the access entry maps the role the Kubernetes handlers run as.
// Exit 1 with every failure listed; exit 0 prints a one-line summary.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = path.resolve(appDir, "..");
const outDir = path.resolve(process.argv[2] ?? path.join(appDir, "cdk.out"));
const stackId = process.argv[3] ?? "Selfheal";

const KUBE_HANDLERS = ["rollback", "pause", "resume", "restart", "verify"];
const STATE_MACHINES = {
  RemediateDeploymentStateMachine: "remediate-deployment.asl.json",
  RemediateFleetStateMachine: "remediate-fleet.asl.json",
};

const failures = [];
const fail = (msg) => failures.push(msg);
const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));

const template = readJson(path.join(outDir, `${stackId}.template.json`));
const assets = readJson(path.join(outDir, `${stackId}.assets.json`));
const resources = Object.entries(template.Resources ?? {});
const ofType = (type) => resources.filter(([, r]) => r.Type === type);
/** The construct path below the stack, e.g. `RollbackFunction/Resource`. */
const cdkPath = (r) => String(r.Metadata?.["aws:cdk:path"] ?? "").replace(`${stackId}/`, "");
const byConstruct = (type, construct) => ofType(type).filter(([, r]) => cdkPath(r).split("/")[0] === construct);

// ---- Resource counts ----
const packages = fs
  .readdirSync(path.join(repoRoot, "functions"), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(repoRoot, "functions", d.name, "Cargo.toml")))
  .map((d) => d.name)
  .sort();
const expected = {
  "AWS::StepFunctions::StateMachine": 2,
  "AWS::Lambda::Function": packages.length,
  "AWS::Events::Rule": 1,
  "AWS::EKS::AccessEntry": 1,
  "AWS::Lambda::Url": 2,
};
for (const [type, count] of Object.entries(expected)) {
  const got = ofType(type).length;
  if (got !== count) {
    fail(`${type}: expected ${count}, found ${got}`);
  }
}
if (packages.length === 0) {
  fail("no function packages found under functions/");
}

// ---- Functions ----
const functionOf = (name) => {
  const construct = `${name[0].toUpperCase()}${name.slice(1)}Function`;
  return byConstruct("AWS::Lambda::Function", construct)[0];
};
for (const name of packages) {
  const found = functionOf(name);
  if (!found) {
    fail(`functions/${name} has no Lambda function in the stack`);
    continue;
  }
  const [id, { Properties: p }] = found;
  if (p.Runtime !== "provided.al2023") fail(`${id}: Runtime ${p.Runtime}, expected provided.al2023`);
  if (JSON.stringify(p.Architectures) !== JSON.stringify(["arm64"])) {
    fail(`${id}: Architectures ${JSON.stringify(p.Architectures)}, expected ["arm64"]`);
  }
  if (p.Handler !== "bootstrap") fail(`${id}: Handler ${p.Handler}, expected bootstrap`);
}

// ---- State machines: same file, complete substitutions ----
const assetFileByKey = new Map();
for (const asset of Object.values(assets.files ?? {})) {
  for (const dest of Object.values(asset.destinations ?? {})) {
    assetFileByKey.set(dest.objectKey, path.join(outDir, asset.source.path));
  }
}
for (const [construct, file] of Object.entries(STATE_MACHINES)) {
  const found = byConstruct("AWS::StepFunctions::StateMachine", construct)[0];
  if (!found) {
    fail(`state machine ${construct} missing`);
    continue;
  }
  const [id, { Properties: p }] = found;
  const source = fs.readFileSync(path.join(repoRoot, "statemachines", file));
  const key = p.DefinitionS3Location?.Key;
  const staged = assetFileByKey.get(key);
  if (p.DefinitionString !== undefined || p.Definition !== undefined) {
    fail(`${id}: definition inlined; expected the asset of statemachines/${file}`);
  } else if (!staged || !fs.existsSync(staged)) {
    fail(`${id}: DefinitionS3Location key ${JSON.stringify(key)} is not a staged asset`);
  } else if (!source.equals(fs.readFileSync(staged))) {
    fail(`${id}: staged definition differs from statemachines/${file}`);
  }
  const placeholders = new Set([...source.toString("utf8").matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]));
  const substituted = new Set(Object.keys(p.DefinitionSubstitutions ?? {}));
  for (const name of placeholders) {
    if (!substituted.has(name)) fail(`${id}: \${${name}} in ${file} has no DefinitionSubstitutions entry`);
  }
  for (const name of substituted) {
    if (!placeholders.has(name)) fail(`${id}: DefinitionSubstitutions.${name} is not used by ${file}`);
  }
}

// ---- IAM: no eks/states action on every resource ----
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const statements = [];
for (const [id, r] of resources) {
  const docs = [];
  if (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") {
    docs.push(r.Properties.PolicyDocument);
  } else if (r.Type === "AWS::IAM::Role") {
    docs.push(...list(r.Properties.Policies).map((pol) => pol.PolicyDocument));
  }
  for (const doc of docs) {
    for (const st of list(doc?.Statement)) statements.push([id, st]);
  }
}
const sensitive = (action) =>
  typeof action !== "string" || action === "*" || /^(eks|states):/i.test(action);
for (const [id, st] of statements) {
  if (st.Effect !== "Allow") continue;
  const actions = list(st.Action);
  const touches = st.NotAction !== undefined || actions.some(sensitive);
  if (!touches) continue;
  if (st.NotResource !== undefined) {
    fail(`${id}: ${JSON.stringify(actions)} with NotResource`);
  }
  if (list(st.Resource).some((res) => res === "*")) {
    fail(`${id}: ${JSON.stringify(st.NotAction ?? actions)} on Resource "*"`);
  }
}
const managed = resources.flatMap(([id, r]) =>
  list(r.Properties?.ManagedPolicyArns)
    .filter((arn) => !JSON.stringify(arn).includes("service-role/AWSLambdaBasicExecutionRole"))
    .map((arn) => `${id}: ${JSON.stringify(arn)}`),
);
if (managed.length > 0) {
  fail(`managed policies other than AWSLambdaBasicExecutionRole: ${managed.join(", ")}`);
}

// ---- The access entry maps the Kubernetes handlers' role ----
const entry = ofType("AWS::EKS::AccessEntry")[0];
if (entry) {
  const principal = JSON.stringify(entry[1].Properties.PrincipalArn);
  for (const name of KUBE_HANDLERS) {
    const found = functionOf(name);
    if (!found) continue;
    const role = found[1].Properties.Role;
    const roleId = role?.["Fn::GetAtt"]?.[0];
    if (JSON.stringify({ "Fn::GetAtt": [roleId, "Arn"] }) !== principal) {
      fail(`${found[0]}: runs as ${JSON.stringify(role)}, not the access entry's principal ${principal}`);
    }
  }
  if (!list(entry[1].Properties.KubernetesGroups).length) {
    fail("access entry maps no Kubernetes group");
  }
}

if (failures.length > 0) {
  console.error(`cdk synth check: ${failures.length} failure(s) in ${path.join(outDir, `${stackId}.template.json`)}`);
  for (const f of failures) console.error(`  - ${f}`);
  process.exit(1);
}
const counts = Object.keys(expected)
  .map((type) => `${ofType(type).length} ${type.split("::").slice(1).join("::")}`)
  .join(", ");
console.log(
  `cdk synth check: ok (${resources.length} resources: ${counts}; ${statements.length} IAM statements, none with eks/states on "*"; definitions identical to statemachines/*.asl.json)`,
);

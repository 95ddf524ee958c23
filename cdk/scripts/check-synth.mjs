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
// - the dashboard's body is `Fn::Sub` over deploy/dashboard.json's bytes (the
//   body template.yaml carries on one line), every `${...}` in it filled;
// - least privilege: no IAM statement grants eks:* or states:* actions on
//   `Resource: "*"` (or through NotResource / NotAction);
// - the access entry maps the role the Kubernetes handlers run as;
// - no circular dependency between resources;
// - parity with ../template.yaml: same parameters (type, default, allowed
//   values), outputs and conditions; per function the same environment
//   variable names, timeout, memory, reserved concurrency, role and event
//   sources; per state machine the same definition file and substitution
//   names; every other resource present under the same name (and
//   condition).
// Exit 1 with every failure listed; exit 0 prints a one-line summary.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import YAML from "yaml";

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

// ---- Dashboard: the same bytes as deploy/dashboard.json, every name filled ----
{
  const file = path.join(repoRoot, "deploy", "dashboard.json");
  const found = byConstruct("AWS::CloudWatch::Dashboard", "Dashboard")[0];
  const sub = found?.[1].Properties.DashboardBody?.["Fn::Sub"];
  if (!found) {
    fail("dashboard Dashboard missing");
  } else if (!Array.isArray(sub) || sub[0] !== fs.readFileSync(file, "utf8")) {
    fail(`${found[0]}: DashboardBody is not Fn::Sub over deploy/dashboard.json`);
  } else {
    const names = new Set([...sub[0].matchAll(/\$\{([A-Za-z0-9_:]+)\}/g)].map((m) => m[1]));
    const given = new Set(Object.keys(sub[1] ?? {}));
    for (const name of names) {
      if (!name.startsWith("AWS::") && !given.has(name)) fail(`${found[0]}: \${${name}} of deploy/dashboard.json not substituted`);
    }
    for (const name of given) {
      if (!names.has(name)) fail(`${found[0]}: substitution ${name} is not used by deploy/dashboard.json`);
    }
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
    // The VPC access policy (ENIs), only under the InVpc condition (private cluster endpoints).
    .filter(
      (arn) =>
        !(arn?.["Fn::If"]?.[0] === "InVpc" && JSON.stringify(arn).includes("service-role/AWSLambdaVPCAccessExecutionRole")),
    )
    .map((arn) => `${id}: ${JSON.stringify(arn)}`),
);
if (managed.length > 0) {
  fail(`managed policies other than AWSLambdaBasicExecutionRole (and AWSLambdaVPCAccessExecutionRole if InVpc): ${managed.join(", ")}`);
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

// ---- No circular dependency (CloudFormation would refuse the stack) ----
const refsOf = (value, acc = new Set()) => {
  if (Array.isArray(value)) {
    for (const v of value) refsOf(v, acc);
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "Ref" && typeof v === "string") acc.add(v);
      else if (k === "Fn::GetAtt") acc.add(Array.isArray(v) ? v[0] : String(v).split(".")[0]);
      else if (k === "Fn::Sub") {
        const [text, vars] = Array.isArray(v) ? v : [v, {}];
        for (const m of String(text).matchAll(/\$\{([^}!]+)\}/g)) acc.add(m[1].split(".")[0]);
        refsOf(vars, acc);
      } else refsOf(v, acc);
    }
  }
  return acc;
};
const graph = new Map(
  resources.map(([id, r]) => {
    const deps = refsOf(r.Properties ?? {});
    for (const d of list(r.DependsOn)) deps.add(d);
    return [id, [...deps].filter((d) => template.Resources[d] !== undefined)];
  }),
);
const state = new Map();
const visit = (id, trail) => {
  state.set(id, "open");
  for (const dep of graph.get(id)) {
    if (state.get(dep) === "open") fail(`circular dependency: ${[...trail.slice(trail.indexOf(dep)), id, dep].join(" -> ")}`);
    else if (!state.has(dep)) visit(dep, [...trail, id]);
  }
  state.set(id, "done");
};
for (const id of graph.keys()) if (!state.has(id)) visit(id, []);

// ---- Parity with template.yaml (the SAM stack this app mirrors) ----
const samFile = path.join(repoRoot, "template.yaml");
let parity = "template.yaml not found: parity not checked";
if (fs.existsSync(samFile)) {
  const sam = YAML.parse(fs.readFileSync(samFile, "utf8"), { logLevel: "silent" });
  /** JSON with object keys sorted, so that key order never counts as a difference. */
  const canonical = (v) =>
    JSON.stringify(v, (_, x) =>
      x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x,
    );
  const paritySame = (what, a, b) => {
    if (canonical(a) !== canonical(b)) fail(`${what}: template.yaml ${canonical(a)}, CDK ${canonical(b)}`);
  };
  const str = (v) => (v === undefined ? undefined : Array.isArray(v) ? v.map(String) : String(v));
  const cdkParams = Object.fromEntries(Object.entries(template.Parameters ?? {}).filter(([n]) => n !== "BootstrapVersion"));
  paritySame("parameters", Object.keys(sam.Parameters ?? {}).sort(), Object.keys(cdkParams).sort());
  for (const [name, p] of Object.entries(sam.Parameters ?? {})) {
    const c = cdkParams[name];
    if (!c) continue;
    for (const key of ["Type", "Default", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "MinLength"]) {
      paritySame(`parameter ${name}.${key}`, str(p[key]), str(c[key]));
    }
  }
  paritySame("outputs", Object.keys(sam.Outputs ?? {}).sort(), Object.keys(template.Outputs ?? {}).sort());
  for (const name of Object.keys(sam.Conditions ?? {})) {
    if (!template.Conditions?.[name]) fail(`condition ${name} of template.yaml missing`);
  }
  /** CDK resources whose construct path (ids concatenated, `Resource` dropped) is `name`. */
  const cdkNamed = (name, type) =>
    resources.filter(
      ([, r]) =>
        r.Type === type &&
        cdkPath(r)
          .split("/")
          .filter((seg) => seg !== "Resource")
          .join("") === name,
    );
  const globals = sam.Globals?.Function ?? {};
  /** `{Ref: X}` as the bare name X, the way the YAML parser reads `!Ref X`. */
  const bare = (v) =>
    Array.isArray(v)
      ? v.map(bare)
      : v && typeof v === "object"
        ? typeof v.Ref === "string" && Object.keys(v).length === 1
          ? v.Ref
          : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bare(x)]))
        : v;
  let compared = 0;
  for (const [name, r] of Object.entries(sam.Resources ?? {})) {
    const p = r.Properties ?? {};
    if (r.Type === "AWS::Serverless::Function") {
      const found = cdkNamed(name, "AWS::Lambda::Function")[0];
      if (!found) {
        fail(`function ${name} of template.yaml missing`);
        continue;
      }
      const c = found[1].Properties;
      const samEnv = { ...(globals.Environment?.Variables ?? {}), ...(p.Environment?.Variables ?? {}) };
      paritySame(`${name} environment`, Object.keys(samEnv).sort(), Object.keys(c.Environment?.Variables ?? {}).sort());
      paritySame(`${name} Timeout`, p.Timeout ?? globals.Timeout, c.Timeout);
      paritySame(`${name} MemorySize`, p.MemorySize ?? globals.MemorySize, c.MemorySize);
      // `!If [Cond, !Ref P, !Ref AWS::NoValue]` reads as a bare list here.
      const reserved = bare(c.ReservedConcurrentExecutions);
      paritySame(`${name} ReservedConcurrentExecutions`, p.ReservedConcurrentExecutions, reserved?.["Fn::If"] ?? reserved);
      paritySame(`${name} Binary`, r.Metadata?.BuildProperties?.Binary, name.replace(/Function$/, "").toLowerCase());
      const samRole = typeof p.Role === "string" ? p.Role.split(".")[0] : undefined;
      if (samRole) {
        const role = cdkNamed(samRole, "AWS::IAM::Role")[0];
        paritySame(`${name} Role`, role && { "Fn::GetAtt": [role[0], "Arn"] }, c.Role);
      }
      for (const [eventName, ev] of Object.entries(p.Events ?? {})) {
        if (ev.Type === "EventBridgeRule") {
          const rule = ofType("AWS::Events::Rule").find(([, x]) =>
            list(x.Properties.Targets).some((t) => t.Arn?.["Fn::GetAtt"]?.[0] === found[0]),
          );
          paritySame(`${name} event ${eventName} pattern`, ev.Properties.Pattern, rule && bare(rule[1].Properties.EventPattern));
        } else if (ev.Type === "SNS") {
          const sub = ofType("AWS::SNS::Subscription").find(
            ([, x]) => x.Properties.Protocol === "lambda" && x.Properties.Endpoint?.["Fn::GetAtt"]?.[0] === found[0],
          );
          if (!sub) fail(`${name} event ${eventName}: no SNS subscription of the function`);
        }
      }
      compared += 1;
    } else if (r.Type === "AWS::Serverless::StateMachine") {
      const found = cdkNamed(name, "AWS::StepFunctions::StateMachine")[0];
      if (!found) {
        fail(`state machine ${name} of template.yaml missing`);
        continue;
      }
      paritySame(`${name} DefinitionUri`, p.DefinitionUri, `statemachines/${STATE_MACHINES[name]}`);
      paritySame(
        `${name} DefinitionSubstitutions`,
        Object.keys(p.DefinitionSubstitutions ?? {}).sort(),
        Object.keys(found[1].Properties.DefinitionSubstitutions ?? {}).sort(),
      );
      paritySame(`${name} Type`, p.Type ?? "STANDARD", found[1].Properties.StateMachineType);
      compared += 1;
    } else if (cdkNamed(name, r.Type).length !== 1) {
      fail(`${r.Type} ${name} of template.yaml has no counterpart named ${name}`);
    } else {
      if (r.Condition) paritySame(`${name} Condition`, r.Condition, cdkNamed(name, r.Type)[0][1].Condition);
      compared += 1;
    }
  }
  parity = `parity with template.yaml: ${compared} resources, parameters, outputs`;
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
  `cdk synth check: ok (${resources.length} resources: ${counts}; ${statements.length} IAM statements, none with eks/states on "*"; definitions identical to statemachines/*.asl.json; ${parity})`,
);

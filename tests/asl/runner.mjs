// Executes the REAL statemachines/*.asl.json with a third-party ASL interpreter
// (npm aws-local-stepfunctions 3.x) whose Task states call the REAL handler
// binaries through cargo-lambda's emulator. Driven by
// tests/tests/statemachine_e2e.rs; one long-lived process serves many runs.
//
// Why aws-local-stepfunctions rather than moto's engine: moto in server mode
// only calls its own Lambda stub, and in-process it needs a Python driver
// plus an ARN/error-shape shim anyway; this interpreter takes a local handler
// per Task state, so the glue is one small, visible function (lambdaInvoke).
//
// What is real here: the definition files (only `${...}` substituted, as
// DefinitionSubstitutions does), the interpreter's Choice/Retry/Catch/Wait/Map
// semantics, every Lambda binary and the test Kubernetes API server.
// What is a shim (test code, documented):
//   * Lambda Invoke: POST .../2015-03-31/functions/<name>/invocations on the
//     emulator; its HTTP 500 {errorType, errorMessage} becomes a thrown error
//     whose name is errorType, which is what Step Functions matches in
//     Retry/Catch ErrorEquals.
//   * `.waitForTaskToken`: the interpreter has no task tokens. The context
//     object's `$$.Task.Token` mints one per evaluation; the handler invokes
//     the function with the payload (notify stores the token behind an
//     approval link) and then waits until SendTaskSuccess / SendTaskFailure
//     for that token reaches this process's Step Functions endpoint (the
//     approve function is pointed here with AWS_ENDPOINT_URL_SFN). Every other
//     Step Functions call (StartExecution, DescribeExecution, ...) is proxied
//     unchanged to moto, so ingest's executions land in moto.
//   * `states:startExecution.sync:2` (remediate-fleet's Map): the child
//     definition is run here, in-process, and its output (or its failure as
//     States.TaskFailed with the DescribeExecution-like JSON as Cause) is the
//     task's result, as Step Functions does.
//   * Two interpreter bugs are patched at load time (see patchInterpreter):
//     States.JsonMerge mutated its first argument (Object.assign(obj1, obj2)),
//     and a Pass state with `"Result": null` returned its input instead of null.
//
// HTTP API (127.0.0.1 only):
//   POST /run   {stateMachine, name?, input, substitutions?} -> the execution's
//               {executionArn, status, output, error, cause, states, events, ...}
//   GET  /tasks -> tokens currently waiting for a callback
//   POST /      Step Functions JSON protocol (X-Amz-Target): see above.
//   GET  /health
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Node 20 lacks Promise.withResolvers, which the interpreter uses for Task timeouts.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const env = process.env;
const PORT = Number(env.SELFHEAL_ASL_PORT ?? '0');
const EMULATOR = env.SELFHEAL_EMULATOR_URL ?? 'http://127.0.0.1:9000';
const MOTO = env.SELFHEAL_MOTO_URL ?? '';
const REGION = env.SELFHEAL_ASL_REGION ?? 'us-east-1';
const ACCOUNT = env.SELFHEAL_ASL_ACCOUNT ?? '123456789012';
const LOG = env.SELFHEAL_ASL_LOG === '1';

function log(...args) {
  if (LOG) console.error(new Date().toISOString(), ...args);
}

// ------------------------------------------------------------ interpreter --

/// Loads aws-local-stepfunctions with two one-line fixes applied to its ESM
/// build (written next to it, so its own imports resolve). Each fix must match
/// exactly once: a new interpreter version fails loudly instead of silently.
async function patchInterpreter() {
  const build = join(here, 'node_modules', 'aws-local-stepfunctions', 'build');
  const source = readFileSync(join(build, 'main.node.esm.js'), 'utf8');
  const fixes = [
    // States.JsonMerge must return a new object, not modify its first argument
    // (the definition merges $.request with an overlay and keeps using $.request).
    ['return Object.assign(obj1, obj2);', 'return Object.assign({}, obj1, obj2);'],
    // A Pass state's Result may be any JSON value, including null/false/0.
    ['if (this.stateDefinition.Result) {', 'if ("Result" in this.stateDefinition) {'],
  ];
  let patched = source;
  for (const [from, to] of fixes) {
    const count = patched.split(from).length - 1;
    if (count !== 1) {
      throw new Error(`interpreter patch expects exactly one "${from}", found ${count}`);
    }
    patched = patched.replace(from, to);
  }
  const target = join(build, 'main.selfheal-patched.mjs');
  if (!existsSync(target) || readFileSync(target, 'utf8') !== patched) {
    writeFileSync(target, patched);
  }
  return import(pathToFileURL(target).href);
}

const { StateMachine } = await patchInterpreter();

// ------------------------------------------------------------ definitions --

const MACHINES = {
  'remediate-deployment': 'statemachines/remediate-deployment.asl.json',
  'remediate-fleet': 'statemachines/remediate-fleet.asl.json',
  // The polling design the watch replaced (tests/fixtures/statemachines/README.md),
  // run beside the current one by tests/benches/verify_watch.rs.
  'remediate-deployment-polling': 'tests/fixtures/statemachines/remediate-deployment-polling.asl.json',
};

function lambdaArn(name) {
  return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
}

function stateMachineArn(name) {
  return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${name}`;
}

/// What template.yaml's DefinitionSubstitutions provide; a run may override
/// the knobs (e.g. VerifyIntervalSeconds) with its own values.
function defaultSubstitutions() {
  return {
    RollbackFunctionArn: lambdaArn('rollback'),
    PauseFunctionArn: lambdaArn('pause'),
    ResumeFunctionArn: lambdaArn('resume'),
    RestartFunctionArn: lambdaArn('restart'),
    VerifyFunctionArn: lambdaArn('verify'),
    NotifyFunctionArn: lambdaArn('notify'),
    RemediateDeploymentStateMachineArn: stateMachineArn('remediate-deployment'),
    RequireApproval: 'false',
    VerifyIntervalSeconds: '0',
    VerifyTimeoutSeconds: '30',
    FleetMaxConcurrency: '10',
    FleetMaxTargets: '100',
  };
}

/// The definition text with `${Name}` replaced; any placeholder left over is an error.
function loadDefinition(machine, substitutions) {
  const file = MACHINES[machine];
  if (!file) throw new Error(`unknown state machine ${machine}`);
  const text = readFileSync(join(root, file), 'utf8');
  const values = { ...defaultSubstitutions(), ...(substitutions ?? {}) };
  const replaced = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, name) => {
    if (!(name in values)) throw new Error(`${file}: no substitution for ${whole}`);
    return String(values[name]);
  });
  return JSON.parse(replaced);
}

/// Every Task state (also inside Map/Parallel), by name: the interpreter's
/// override table is keyed by state name.
function taskStates(definition, out = {}) {
  for (const [name, state] of Object.entries(definition.States ?? {})) {
    if (state.Type === 'Task') out[name] = state;
    for (const nested of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) {
      if (nested) taskStates(nested, out);
    }
  }
  return out;
}

// ----------------------------------------------------------------- lambda --

function functionName(arnOrName) {
  const m = /^arn:aws[^:]*:lambda:[^:]*:[^:]*:function:([^:]+)/.exec(arnOrName);
  return m ? m[1] : arnOrName;
}

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

/// One synchronous Lambda Invoke through cargo-lambda's emulator.
async function lambdaInvoke(fn, payload) {
  const name = functionName(fn);
  const url = `${EMULATOR}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload ?? null),
    });
  } catch (error) {
    throw namedError('Lambda.SdkClientException', `invoke ${name}: ${error.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = text;
  }
  log('invoke', name, response.status, text.slice(0, 300));
  if (response.status === 200) return body;
  if (response.status === 500 && body && typeof body === 'object' && body.errorType) {
    // Real Lambda: 200 + X-Amz-Function-Error; Step Functions names the error errorType.
    throw namedError(body.errorType, body.errorMessage ?? '');
  }
  throw namedError('Lambda.ServiceException', `invoke ${name}: HTTP ${response.status}: ${text}`);
}

// --------------------------------------------------------- task callbacks --

/// token -> {resolve, reject, execution, state, since}
const waiting = new Map();
/// Tokens that were answered or abandoned (a second answer is TaskTimedOut).
const finished = new Set();

function findToken(value, minted) {
  if (typeof value === 'string') return minted.has(value) ? value : null;
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) {
      const t = findToken(v, minted);
      if (t) return t;
    }
  }
  return null;
}

async function waitForTaskToken(run, stateName, input) {
  const token = findToken(input, run.minted);
  if (!token) throw namedError('States.Runtime', `${stateName}: the payload carries no $$.Task.Token`);
  const { promise, resolve, reject } = Promise.withResolvers();
  waiting.set(token, { resolve, reject, execution: run.executionArn, state: stateName, since: Date.now() });
  try {
    // lambda:invoke is RequestResponse: a function error fails the task;
    // its result is ignored, the callback decides.
    await lambdaInvoke(input.FunctionName, input.Payload);
    return await promise;
  } finally {
    waiting.delete(token);
    finished.add(token);
  }
}

function sfnError(res, status, type, message) {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify({ __type: type, message }));
}

function handleCallback(target, body, res) {
  const request = JSON.parse(body || '{}');
  const token = request.taskToken;
  const entry = waiting.get(token);
  if (!entry) {
    if (finished.has(token)) return sfnError(res, 400, 'TaskTimedOut', 'Task Timed Out');
    return sfnError(res, 400, 'TaskDoesNotExist', 'Task does not exist anymore');
  }
  log('callback', target, entry.execution, entry.state);
  if (target === 'SendTaskSuccess') {
    let output;
    try {
      output = JSON.parse(request.output);
    } catch {
      return sfnError(res, 400, 'InvalidOutput', 'output is not JSON');
    }
    entry.resolve(output);
  } else if (target === 'SendTaskFailure') {
    entry.reject(namedError(request.error ?? 'States.TaskFailed', request.cause ?? ''));
  }
  // SendTaskHeartbeat: nothing to do (no HeartbeatSeconds in the definitions).
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
  res.end('{}');
}

async function proxyToMoto(req, body, res) {
  if (!MOTO) return sfnError(res, 500, 'ServiceException', 'no moto configured for this call');
  const headers = { ...req.headers };
  delete headers.host;
  delete headers['content-length'];
  const response = await fetch(`${MOTO}${req.url}`, { method: req.method, headers, body });
  const text = await response.text();
  res.writeHead(response.status, {
    'content-type': response.headers.get('content-type') ?? 'application/x-amz-json-1.0',
  });
  res.end(text);
}

// ------------------------------------------------------------- executions --

/// Runs one execution to its end; never throws (a failure is a result).
async function runExecution(machine, name, input, substitutions) {
  const definition = loadDefinition(machine, substitutions);
  const smArn = stateMachineArn(machine);
  const executionArn = `arn:aws:states:${REGION}:${ACCOUNT}:execution:${machine}:${name}`;
  const run = { executionArn, minted: new Set(), children: [] };
  const startTime = new Date().toISOString();
  const context = {
    Execution: { Id: executionArn, Name: name, StartTime: startTime, Input: input, RoleArn: `arn:aws:iam::${ACCOUNT}:role/selfheal` },
    StateMachine: { Id: smArn, Name: machine },
    // Evaluated on every reference, like the service's per-state values.
    State: {
      get EnteredTime() {
        return new Date().toISOString();
      },
    },
    Task: {
      get Token() {
        const token = `${name}.${randomBytes(24).toString('base64url')}`;
        run.minted.add(token);
        return token;
      },
    },
  };

  const handlers = {};
  for (const [stateName, state] of Object.entries(taskStates(definition))) {
    const resource = state.Resource;
    if (resource.startsWith('arn:aws:states:::lambda:invoke.waitForTaskToken')) {
      handlers[stateName] = (input) => waitForTaskToken(run, stateName, structuredClone(input));
    } else if (resource.startsWith('arn:aws:states:::states:startExecution.sync')) {
      handlers[stateName] = (input) => startChild(run, resource, structuredClone(input), substitutions);
    } else if (resource.startsWith('arn:aws:lambda:') || resource.startsWith('arn:aws:states:::lambda:invoke')) {
      // Clone now: the interpreter may hand out objects it later reuses.
      handlers[stateName] = (input) => {
        const payload = structuredClone(input);
        return resource.startsWith('arn:aws:lambda:')
          ? lambdaInvoke(resource, payload)
          : lambdaInvoke(payload.FunctionName, payload.Payload).then((Payload) => ({ Payload, StatusCode: 200 }));
      };
    } else {
      throw new Error(`${machine}: no local handler for Task ${stateName} (${resource})`);
    }
  }

  const machineObj = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
  const started = Date.now();
  const execution = machineObj.run(input, { context, overrides: { taskResourceLocalHandlers: handlers } });
  const states = [];
  const events = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') states.push(event.state.name);
      if (['StateRetried', 'StateCaught', 'StateFailed'].includes(event.type)) {
        events.push({ type: event.type, state: event.state?.name, error: event.state?.error ?? event.error });
      }
    }
  })();
  const result = { executionArn, name, stateMachine: machine, startDate: startTime, input };
  try {
    result.output = await execution.result;
    result.status = 'SUCCEEDED';
  } catch (error) {
    const cause = error.cause ?? error;
    result.status = 'FAILED';
    result.error = cause.name ?? 'States.Runtime';
    result.cause = cause.message ?? String(cause);
  }
  await Promise.race([collecting, new Promise((r) => setTimeout(r, 200))]);
  result.stopDate = new Date().toISOString();
  result.durationMs = Date.now() - started;
  result.states = states;
  result.events = events;
  result.children = run.children;
  log('execution', machine, name, result.status, result.error ?? '', `${result.durationMs}ms`);
  return result;
}

/// `states:startExecution.sync:2`: run the child here, return what the service returns.
async function startChild(parent, resource, params, substitutions) {
  const arn = String(params.StateMachineArn ?? '');
  const machine = arn.split(':stateMachine:')[1];
  if (!MACHINES[machine]) throw namedError('StepFunctions.StateMachineDoesNotExistException', `no state machine ${arn}`);
  const input = typeof params.Input === 'string' ? JSON.parse(params.Input) : (params.Input ?? {});
  const name = params.Name ?? `${parent.executionArn.split(':').pop()}-${randomBytes(6).toString('hex')}`;
  const child = await runExecution(machine, name, input, substitutions);
  parent.children.push(child);
  const described = {
    ExecutionArn: child.executionArn,
    StateMachineArn: stateMachineArn(machine),
    Name: child.name,
    Status: child.status,
    StartDate: child.startDate,
    StopDate: child.stopDate,
    Input: JSON.stringify(input),
  };
  if (child.status === 'SUCCEEDED') {
    // .sync:2 returns Output as JSON, not as a string.
    return { ...described, Output: child.output };
  }
  throw namedError('States.TaskFailed', JSON.stringify({ ...described, Error: child.error, Cause: child.cause }));
}

// ----------------------------------------------------------------- server --

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const server = createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string' && target.startsWith('AWSStepFunctions.')) {
      const op = target.slice('AWSStepFunctions.'.length);
      if (['SendTaskSuccess', 'SendTaskFailure', 'SendTaskHeartbeat'].includes(op)) {
        return handleCallback(op, body, res);
      }
      return await proxyToMoto(req, body, res);
    }
    if (req.method === 'GET' && req.url === '/health') return json(res, 200, { ok: true });
    if (req.method === 'GET' && req.url === '/tasks') {
      return json(res, 200, [...waiting.entries()].map(([token, w]) => ({ token, execution: w.execution, state: w.state, since: w.since })));
    }
    if (req.method === 'POST' && req.url === '/run') {
      const request = JSON.parse(body);
      const name = request.name ?? `run-${randomBytes(8).toString('hex')}`;
      return json(res, 200, await runExecution(request.stateMachine, name, request.input ?? {}, request.substitutions));
    }
    json(res, 404, { error: `no route ${req.method} ${req.url}` });
  } catch (error) {
    json(res, 500, { error: error.name, message: error.message });
  }
});
server.requestTimeout = 0;
server.headersTimeout = 0;
server.listen(PORT, '127.0.0.1', () => {
  // The test reads this line to learn the port.
  console.log(JSON.stringify({ listening: server.address().port }));
});

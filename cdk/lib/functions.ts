/**
 * The Lambda functions of the stack, one per cargo-lambda binary in
 * `functions/<name>/` (the binary is named after its folder, so
 * `cargo lambda build --release --arm64` writes `target/lambda/<name>/bootstrap`).
 *
 * Kept as data, not derived from the `functions/` folder, because each one
 * needs its own sizing and permissions; `scripts/check-synth.mjs` cross-checks
 * that every folder in `functions/` is deployed.
 */
export interface FunctionSpec {
  /** Binary / folder name. */
  readonly name: string;
  /** CloudFormation logical id prefix (the SAM template's resource name). */
  readonly id: string;
  readonly description: string;
  readonly memoryMiB: number;
  readonly timeoutSeconds: number;
}

/** Handlers that talk to the Kubernetes API (they share the role the EKS access entry maps). */
export const KUBE_HANDLERS: readonly FunctionSpec[] = [
  {
    name: "rollback",
    id: "RollbackFunction",
    description: "selfheal rollback: half-brick rollback of the offending container's image",
    memoryMiB: 256,
    timeoutSeconds: 30,
  },
  {
    name: "pause",
    id: "PauseFunction",
    description: "selfheal pause: freeze a risky rollout (spec.paused)",
    memoryMiB: 256,
    timeoutSeconds: 30,
  },
  {
    name: "resume",
    id: "ResumeFunction",
    description: "selfheal resume: resume a rollout selfheal or a human paused",
    memoryMiB: 256,
    timeoutSeconds: 30,
  },
  {
    name: "restart",
    id: "RestartFunction",
    description: "selfheal restart: kubectl rollout restart semantics",
    memoryMiB: 256,
    timeoutSeconds: 30,
  },
  {
    name: "verify",
    id: "VerifyFunction",
    description: "selfheal verify: kubectl rollout status semantics for the verify loop",
    memoryMiB: 256,
    timeoutSeconds: 30,
  },
];

export const NOTIFY: FunctionSpec = {
  name: "notify",
  id: "NotifyFunction",
  description: "selfheal notify: SNS/Slack messages, approval links, fleet summaries",
  memoryMiB: 256,
  timeoutSeconds: 30,
};

export const APPROVE: FunctionSpec = {
  name: "approve",
  id: "ApproveFunction",
  description: "selfheal approve: redeems single-use approve/deny links (Function URL)",
  memoryMiB: 256,
  timeoutSeconds: 15,
};

export const INGEST: FunctionSpec = {
  name: "ingest",
  id: "IngestFunction",
  description: "selfheal ingest: alarms (EventBridge, SNS) and Alertmanager webhooks to executions",
  memoryMiB: 256,
  timeoutSeconds: 30,
};

/** Every function, in a stable order (the placeholder assets are made from this list). */
export const ALL_FUNCTIONS: readonly FunctionSpec[] = [...KUBE_HANDLERS, NOTIFY, APPROVE, INGEST];

/**
 * The Lambda functions of the stack, one per cargo-lambda binary in
 * `functions/<name>/` (the binary is named after its folder, so
 * `cargo lambda build --release --arm64` writes `target/lambda/<name>/bootstrap`).
 *
 * Kept as data, not derived from the `functions/` folder, because each one
 * needs its own sizing and permissions; `scripts/check-synth.mjs` cross-checks
 * that every folder in `functions/` is deployed. Sizes and timeouts are
 * template.yaml's (256 MB from its Globals, measured there).
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
    description: "Half-brick rollback of one Deployment (RemediationRequest -> RemediationOutcome).",
    memoryMiB: 256,
    timeoutSeconds: 25,
  },
  {
    name: "pause",
    id: "PauseFunction",
    description: "Pause one Deployment's rollout (impact-gated when alarm-driven).",
    memoryMiB: 256,
    timeoutSeconds: 25,
  },
  {
    name: "resume",
    id: "ResumeFunction",
    description: "Resume one Deployment's rollout.",
    memoryMiB: 256,
    timeoutSeconds: 25,
  },
  {
    name: "restart",
    id: "RestartFunction",
    description: "Rolling restart of one Deployment (kubectl rollout restart parity).",
    memoryMiB: 256,
    timeoutSeconds: 25,
  },
  {
    name: "verify",
    id: "VerifyFunction",
    description: "Rollout status of one Deployment (done | waiting | failed).",
    memoryMiB: 256,
    // Up to 660 s of watching per call plus the reads around it (template.yaml).
    timeoutSeconds: 720,
  },
];

export const NOTIFY: FunctionSpec = {
  name: "notify",
  id: "NotifyFunction",
  description: "SNS/Slack messages with console links; approval links; deploymentHealth and fleet summaries.",
  memoryMiB: 256,
  timeoutSeconds: 20,
};

export const APPROVE: FunctionSpec = {
  name: "approve",
  id: "ApproveFunction",
  description: "Approval links (Function URL). GET confirms, POST decides once; used or expired links answer 410.",
  memoryMiB: 256,
  timeoutSeconds: 10,
};

export const INGEST: FunctionSpec = {
  name: "ingest",
  id: "IngestFunction",
  description: "Alarms (EventBridge, SNS) and Alertmanager webhooks in, remediate-deployment executions out.",
  memoryMiB: 256,
  timeoutSeconds: 20,
};

/** Every function, in a stable order (the placeholder assets are made from this list). */
export const ALL_FUNCTIONS: readonly FunctionSpec[] = [...KUBE_HANDLERS, NOTIFY, APPROVE, INGEST];

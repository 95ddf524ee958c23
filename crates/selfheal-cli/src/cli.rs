//! Command-line surface (clap derive) and what each command does.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use selfheal_core::{
    Action, Policy, RemediationOutcome, RolloutStatus, ValidRequest, WorkloadKind,
};
use serde::Serialize;

use crate::Error;
use selfheal_snapshot::Snapshot;

/// Run one selfheal remediation (rollback, pause, resume, restart) or
/// evaluate a rollout, against a cluster or an offline kubectl snapshot.
#[derive(Debug, Parser)]
#[command(name = "selfheal", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one RemediationRequest; print the RemediationOutcome JSON on stdout.
    ///
    /// Exit status 0 for every outcome (applied, skipped, dryRun, refused),
    /// or 3 for `refused` with --fail-on-refused; non-zero only when no
    /// outcome could be produced.
    Run(RunArgs),
    /// Roll back the Deployment's changed container images (half-brick):
    /// `run` with a request built from the flags.
    Rollback(RollbackArgs),
    /// Pause the Deployment's rollout: `run` with a request built from the flags.
    Pause(ActionArgs),
    /// Resume the Deployment's rollout: `run` with a request built from the flags.
    Resume(ActionArgs),
    /// Restart the Deployment's pods (`kubectl rollout restart`): `run` with
    /// a request built from the flags.
    Restart(ActionArgs),
    /// Print `{"state":"done|waiting|failed","message":...}` like `kubectl rollout status`.
    ///
    /// Exit status 0 whenever the rollout was evaluated, whatever its state
    /// (read `state`); non-zero only when it could not be evaluated.
    Status(StatusArgs),
    /// Print, as a JSON array, the `{executionName, request}` objects the
    /// `ingest` function would start for an event file (CloudWatch alarm via
    /// EventBridge/SNS/alarm action, Alertmanager webhook, or a request).
    ///
    /// Honours SELFHEAL_DEFAULT_CLUSTER / SELFHEAL_DEFAULT_ACTION. Exit status 0
    /// when every alert starts an execution or is not firing (`[]` for OK or
    /// resolved); 1 when a firing alert is rejected (the array still printed,
    /// one `rejected …` line on stderr per alert), so alarm definitions can be
    /// checked in CI; non-zero with one `error:` line for anything else.
    Event(crate::event::EventArgs),
    /// Print an EKS bearer token as a client.authentication.k8s.io
    /// ExecCredential, exactly like `aws eks get-token`, so selfheal can be a
    /// kubeconfig exec credential plugin where the AWS CLI is not installed.
    ///
    /// Credentials come from the AWS default chain (env, profile, SSO, IMDS).
    EksToken(EksTokenArgs),
}

#[derive(Debug, Args)]
pub struct EksTokenArgs {
    /// EKS cluster name (signed into the token as `x-k8s-aws-id`).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: String,
    /// AWS region (default: from the environment or profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Assume this IAM role first and sign with its temporary credentials
    /// (session `EKSGetTokenAuth`, as `aws eks get-token --role-arn`).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
}

/// Where the objects come from: exactly one of a snapshot file or a kubeconfig.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// Output of `kubectl get deploy,rs[,pods] -n NS -o yaml|json` (no cluster needed).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Talk to the cluster of this kubeconfig.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// How `run` and the action verbs reach the objects and report the outcome.
#[derive(Debug, Args)]
pub struct RunOptions {
    #[command(flatten)]
    pub source: Source,
    /// kubeconfig context (default: the current context). A request's
    /// `target.cluster` must name this context's cluster.
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Force a dry run whatever the request says.
    #[arg(long)]
    pub dry_run: bool,
    /// Act on Deployments without the `selfheal.dev/enabled=true` label
    /// (overrides SELFHEAL_REQUIRE_OPT_IN).
    #[arg(long)]
    pub no_opt_in: bool,
    /// Snapshot mode: write every object back here, with the Deployment updated.
    #[arg(long, value_name = "OUT", requires = "snapshot")]
    pub write_snapshot: Option<PathBuf>,
    /// Exit with status 3 when the outcome is `refused` (by default every
    /// outcome exits 0; read `status`).
    #[arg(long)]
    pub fail_on_refused: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// RemediationRequest JSON file (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    #[command(flatten)]
    pub options: RunOptions,
}

/// `selfheal pause|resume|restart -n NS [KIND/]NAME`.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Namespace of the workload.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: String,
    /// The workload, as kubectl names it: `NAME` (a Deployment),
    /// `deployment/NAME`, `statefulset/NAME` or `daemonset/NAME` (also
    /// `deploy/`, `sts/`, `ds/` and the plurals).
    #[arg(value_name = "[KIND/]NAME")]
    pub deployment: String,
    /// Why, recorded in the audit trail on the Deployment (annotations, Event).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub options: RunOptions,
}

/// `selfheal rollback -n NS DEPLOYMENT [--container C]`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Roll back only this container (default: every container whose image
    /// differs from the previous revision).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Deployment, as NAMESPACE/NAME (or give `-n NS DEPLOYMENT`).
    #[arg(
        long,
        value_name = "NS/NAME",
        required_unless_present_any = ["name", "statefulset", "daemonset"],
        conflicts_with_all = ["namespace", "name", "statefulset", "daemonset"]
    )]
    pub deployment: Option<String>,
    /// A StatefulSet instead, as NAMESPACE/NAME (kubectl's StatefulSet
    /// rules: partitioned roll outs, OnDelete).
    #[arg(long, value_name = "NS/NAME", conflicts_with_all = ["namespace", "name", "daemonset"])]
    pub statefulset: Option<String>,
    /// A DaemonSet instead, as NAMESPACE/NAME (kubectl's DaemonSet rules).
    #[arg(long, value_name = "NS/NAME", conflicts_with_all = ["namespace", "name"])]
    pub daemonset: Option<String>,
    /// Namespace of the workload (with [KIND/]NAME).
    #[arg(short = 'n', long, value_name = "NS", requires = "name")]
    pub namespace: Option<String>,
    /// The workload (with -n NS): `NAME` for a Deployment, or kubectl's
    /// `statefulset/NAME`, `daemonset/NAME`, `deployment/NAME`.
    #[arg(value_name = "[KIND/]NAME", requires = "namespace")]
    pub name: Option<String>,
    #[command(flatten)]
    pub source: Source,
    /// kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Wait, as `kubectl rollout status` does, until the rollout is done
    /// or failed (watching the Deployment, not polling), then print the
    /// verdict. Exit status 0 when done, [`EXIT_NOT_DONE`] when failed or
    /// still waiting at `--timeout`.
    #[arg(long, conflicts_with = "snapshot")]
    pub watch: bool,
    /// Stop waiting after this long (`90s`, `5m`, `1h30m`; `0`, the
    /// default, waits as long as it takes). Implies `--watch`.
    #[arg(long, value_name = "D", conflicts_with = "snapshot", value_parser = crate::watch::parse_timeout)]
    pub timeout: Option<std::time::Duration>,
}

impl StatusArgs {
    /// `--watch`, or `--timeout` (which implies it).
    pub fn watching(&self) -> bool {
        self.watch || self.timeout.is_some()
    }
}

/// Exit status of `status --watch` when the rollout failed or the timeout
/// passed first (kubectl's too); the verdict is printed either way.
pub const EXIT_NOT_DONE: u8 = 1;

/// Exit status of `run` and the verbs for a `refused` outcome under
/// `--fail-on-refused`: apart from 1 (no outcome) and 2 (usage).
pub const EXIT_REFUSED: u8 = 3;

/// Exit status of `event` when a firing alert is rejected.
pub const EXIT_REJECTED: u8 = 1;

/// An outcome as `run` prints it: the RemediationOutcome's fields, then,
/// in kubeconfig mode, `context`: the kubeconfig context it ran through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub outcome: RemediationOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `--fail-on-refused`: a `refused` outcome exits with [`EXIT_REFUSED`].
    #[serde(skip)]
    pub fail_on_refused: bool,
}

/// What a successful command prints on stdout (pretty JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Outcome(Box<Report>),
    Status(RolloutStatus),
    /// `status --watch`: the verdict it waited for.
    Watched(RolloutStatus),
    Event(Box<selfheal_events::Ingested>),
    /// Printed verbatim (plus main's newline): the AWS CLI's exact ExecCredential text.
    ExecCredential(String),
}

impl Output {
    pub fn to_json(&self) -> Result<String, Error> {
        match self {
            Output::Outcome(report) => serde_json::to_string_pretty(report),
            Output::Status(s) | Output::Watched(s) => serde_json::to_string_pretty(s),
            Output::Event(ingested) => return crate::event::to_json(ingested),
            Output::ExecCredential(text) => return Ok(text.clone()),
        }
        .map_err(|source| Error::Output { source })
    }

    /// One line for a human watching the terminal.
    pub fn summary(&self) -> String {
        match self {
            Output::Outcome(report) => {
                let o = &report.outcome;
                format!(
                    "selfheal {}: {}: {}",
                    o.action,
                    o.status.as_str(),
                    o.message
                )
            }
            Output::Status(s) | Output::Watched(s) => format!("rollout: {}", s.message),
            Output::Event(ingested) => crate::event::summary(ingested),
            Output::ExecCredential(_) => "eks token: valid for 14 minutes".to_owned(),
        }
    }

    /// The process's exit status once the output is printed: 0, except
    /// [`EXIT_REFUSED`] for a refusal under `--fail-on-refused` and
    /// [`EXIT_REJECTED`] for an event with a rejected alert.
    pub fn exit_code(&self) -> u8 {
        match self {
            Output::Outcome(report)
                if report.fail_on_refused
                    && report.outcome.status == selfheal_core::OutcomeStatus::Refused =>
            {
                EXIT_REFUSED
            }
            Output::Event(ingested) if crate::event::any_rejected(ingested) => EXIT_REJECTED,
            Output::Watched(status) if !status.is_done() => EXIT_NOT_DONE,
            _ => 0,
        }
    }
}

/// The clap command, with the policy variables listed in `--help` (they come
/// from the core so the help cannot drift from what is actually read).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut text = String::from("Policy (environment variables, same as the Lambdas):\n");
    for (name, default, meaning) in selfheal_core::POLICY_VARIABLES {
        text.push_str(&format!("  {name} [default: {default}]\n      {meaning}\n"));
    }
    let mut command = Cli::command().after_long_help(text.clone());
    for acting in ["run", "rollback", "pause", "resume", "restart"] {
        command = command.mut_subcommand(acting, |c| c.after_long_help(text.clone()));
    }
    command
}

/// Policy from the same SELFHEAL_* variables the Lambdas read.
pub fn policy_from_env(no_opt_in: bool) -> Result<Policy, Error> {
    let mut policy = Policy::from_lookup(selfheal_core::env::process)
        .map_err(|source| Error::Policy { source })?;
    if no_opt_in {
        policy.require_opt_in = false;
    }
    Ok(policy)
}

/// Execute a parsed command line.
pub async fn execute(cli: Cli) -> Result<Output, Error> {
    let report = |r: Report| Output::Outcome(Box::new(r));
    match cli.command {
        Command::Run(args) => {
            let text = read_request(&args.request)?;
            let request =
                ValidRequest::from_json(&text).map_err(|source| Error::Request { source })?;
            remediate(request, &args.options).await.map(report)
        }
        Command::Rollback(args) => {
            let request = verb_request(Action::Rollback, &args.action, args.container.as_deref())?;
            remediate(request, &args.action.options).await.map(report)
        }
        Command::Pause(args) => act(Action::Pause, &args).await.map(report),
        Command::Resume(args) => act(Action::Resume, &args).await.map(report),
        Command::Restart(args) => act(Action::Restart, &args).await.map(report),
        Command::Status(args) if args.watching() => status(args).await.map(Output::Watched),
        Command::Status(args) => status(args).await.map(Output::Status),
        Command::Event(args) => crate::event::run(&args).map(|i| Output::Event(Box::new(i))),
        Command::EksToken(args) => {
            let credential = selfheal_eks::exec_credential(
                &args.cluster_name,
                args.region.as_deref(),
                args.role_arn.as_deref(),
            )
            .await
            .and_then(|credential| credential.to_cli_json())
            .map_err(|source| Error::EksToken { source })?;
            // main adds the final newline; the text keeps awscli's blank line.
            let text = credential.strip_suffix('\n').unwrap_or(&credential);
            Ok(Output::ExecCredential(text.to_owned()))
        }
    }
}

async fn act(action: Action, args: &ActionArgs) -> Result<Report, Error> {
    let request = verb_request(action, args, None)?;
    remediate(request, &args.options).await
}

/// The request `selfheal ACTION -n NS DEPLOYMENT` stands for, validated like
/// a request file (a bad name or an empty `--container` is invalid input).
fn verb_request(
    action: Action,
    args: &ActionArgs,
    container: Option<&str>,
) -> Result<ValidRequest, Error> {
    let (kind, name) = kind_and_name(&args.deployment)?;
    let mut target = serde_json::json!({ "namespace": args.namespace });
    target[kind.field()] = name.into();
    if let Some(container) = container {
        target["container"] = container.into();
    }
    let mut request = serde_json::json!({"action": action, "target": target});
    if let Some(reason) = &args.reason {
        request["reason"] = reason.as_str().into();
    }
    ValidRequest::from_json(&request.to_string()).map_err(|source| Error::Request { source })
}

/// Run one request in snapshot or kubeconfig mode.
/// `request` is validated once, where it is parsed; the snapshot and the
/// kube adapter take it as it is.
async fn remediate(mut request: ValidRequest, options: &RunOptions) -> Result<Report, Error> {
    if options.dry_run {
        request.set_dry_run(true);
    }
    let policy = policy_from_env(options.no_opt_in)?;
    let report = |outcome, context| Report {
        outcome,
        context,
        fail_on_refused: options.fail_on_refused,
    };
    match (&options.source.snapshot, &options.source.kubeconfig) {
        (Some(path), _) => {
            let mut snapshot = read_snapshot(path)?;
            let outcome = snapshot
                .remediate_valid(&request, &policy, jiff::Timestamp::now())
                .map_err(|source| Error::Snapshot { source })?;
            if let Some(out) = &options.write_snapshot {
                let text = snapshot
                    .render()
                    .map_err(|source| Error::Snapshot { source })?;
                std::fs::write(out, text).map_err(|source| Error::Write {
                    path: out.clone(),
                    source,
                })?;
            }
            Ok(report(outcome, None))
        }
        (None, kubeconfig) => {
            let context = crate::live::context(kubeconfig.as_deref(), options.context.as_deref())?;
            // Checked before the client exists: a request for another
            // cluster sends nothing.
            if let Some(requested) = request.target.cluster.as_deref()
                && !context.matches(requested)
            {
                return Err(Error::ClusterMismatch {
                    requested: requested.to_owned(),
                    context: context.context,
                    cluster: context.cluster,
                    eks_names: context.eks_names,
                });
            }
            let client = crate::live::client(kubeconfig.as_deref(), Some(&context.context)).await?;
            let mut outcome = crate::live::remediate(client, policy, &request).await?;
            if outcome.target.cluster.is_none() {
                outcome.target.cluster = Some(context.cluster_name().to_owned());
            }
            Ok(report(outcome, Some(context.context)))
        }
    }
}

/// A positional workload as kubectl takes it: `NAME` is a Deployment (as
/// this CLI has always read it), `KIND/NAME` names the kind with one of the
/// names kubectl accepts for it (`statefulset`, `statefulsets`, `sts`, …).
fn kind_and_name(given: &str) -> Result<(WorkloadKind, &str), Error> {
    let Some((kind, name)) = given.split_once('/') else {
        return Ok((WorkloadKind::Deployment, given));
    };
    let kind = kind.to_ascii_lowercase();
    let kind = kind.strip_suffix(".apps").unwrap_or(&kind);
    // The contract holds the noun and the plural; kubectl's short names
    // come from the API server's discovery, so they are listed here.
    let short = |k: WorkloadKind| match k {
        WorkloadKind::Deployment => "deploy",
        WorkloadKind::StatefulSet => "sts",
        WorkloadKind::DaemonSet => "ds",
    };
    WorkloadKind::ALL
        .into_iter()
        .find(|&k| [k.noun(), k.plural(), short(k)].contains(&kind))
        .filter(|_| !name.is_empty() && !name.contains('/'))
        .map(|k| (k, name))
        .ok_or_else(|| Error::WorkloadKind {
            given: given.to_owned(),
        })
}

/// The workload `status` names: `--deployment`, `--statefulset` or
/// `--daemonset NS/NAME`, or `-n NS DEPLOYMENT`.
fn status_target(args: &StatusArgs) -> Result<(WorkloadKind, &str, &str), Error> {
    let flags = [
        (WorkloadKind::Deployment, &args.deployment),
        (WorkloadKind::StatefulSet, &args.statefulset),
        (WorkloadKind::DaemonSet, &args.daemonset),
    ];
    if let Some((kind, both)) = flags
        .into_iter()
        .find_map(|(kind, given)| given.as_deref().map(|g| (kind, g)))
    {
        let (namespace, name) = both
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| Error::WorkloadRef {
                flag: kind.noun(),
                given: both.to_owned(),
            })?;
        return Ok((kind, namespace, name));
    }
    match (&args.namespace, &args.name) {
        (Some(namespace), Some(name)) => {
            let (kind, name) = kind_and_name(name)?;
            Ok((kind, namespace, name))
        }
        // clap requires one of the forms.
        _ => Err(Error::WorkloadRef {
            flag: WorkloadKind::Deployment.noun(),
            given: String::new(),
        }),
    }
}

async fn status(args: StatusArgs) -> Result<RolloutStatus, Error> {
    let (kind, namespace, name) = status_target(&args)?;
    match (&args.source.snapshot, &args.source.kubeconfig) {
        (Some(path), _) => read_snapshot(path)?
            .status_of(kind, namespace, name)
            .map_err(|source| Error::Snapshot { source }),
        (None, kubeconfig) => {
            let client =
                crate::live::client(kubeconfig.as_deref(), args.context.as_deref()).await?;
            // Status reads only; the policy is irrelevant but the Remediator needs one.
            let remediator = selfheal_kube::Remediator::new(client, Policy::default());
            if args.watching() {
                return crate::watch::until_finished(
                    &remediator,
                    (kind, namespace, name),
                    args.timeout,
                )
                .await;
            }
            crate::live::status(remediator, kind, namespace, name).await
        }
    }
}

fn read_request(path: &Path) -> Result<String, Error> {
    let read_error = |source| Error::Read {
        what: "request",
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(read_error)
    }
}

fn read_snapshot(path: &Path) -> Result<Snapshot, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        what: "snapshot",
        path: path.to_path_buf(),
        source,
    })?;
    Snapshot::parse(&text).map_err(|source| Error::Snapshot { source })
}

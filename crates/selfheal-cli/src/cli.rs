//! Command-line surface (clap derive) and what each command does.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use selfheal_core::{Policy, RemediationOutcome, RemediationRequest, RolloutStatus};

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
    /// Exit status 0 for every outcome (applied, skipped, dryRun, refused);
    /// non-zero only when no outcome could be produced.
    Run(RunArgs),
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
    /// for every supported event (`[]` when nothing would start, e.g. OK or
    /// resolved); non-zero with a one-line reason for anything else.
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

#[derive(Debug, Args)]
pub struct RunArgs {
    /// RemediationRequest JSON file (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    #[command(flatten)]
    pub source: Source,
    /// kubeconfig context (default: the current context).
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
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Deployment, as NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME")]
    pub deployment: String,
    #[command(flatten)]
    pub source: Source,
    /// kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
}

/// What a successful command prints on stdout (pretty JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Outcome(Box<RemediationOutcome>),
    Status(RolloutStatus),
    Event(Box<selfheal_events::Ingested>),
    /// Printed verbatim (plus main's newline): the AWS CLI's exact ExecCredential text.
    ExecCredential(String),
}

impl Output {
    pub fn to_json(&self) -> Result<String, Error> {
        match self {
            Output::Outcome(o) => serde_json::to_string_pretty(o),
            Output::Status(s) => serde_json::to_string_pretty(s),
            Output::Event(ingested) => return crate::event::to_json(ingested),
            Output::ExecCredential(text) => return Ok(text.clone()),
        }
        .map_err(|source| Error::Output { source })
    }

    /// One line for a human watching the terminal.
    pub fn summary(&self) -> String {
        match self {
            Output::Outcome(o) => {
                let status = serde_json::to_value(o.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("selfheal {}: {status}: {}", o.action, o.message)
            }
            Output::Status(s) => format!("rollout: {}", s.message),
            Output::Event(ingested) => crate::event::summary(ingested),
            Output::ExecCredential(_) => "eks token: valid for 14 minutes".to_owned(),
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
    Cli::command()
        .mut_subcommand("run", |run| run.after_long_help(text.clone()))
        .after_long_help(text)
}

/// Policy from the same SELFHEAL_* variables the Lambdas read.
pub fn policy_from_env(no_opt_in: bool) -> Result<Policy, Error> {
    let mut policy = Policy::from_lookup(|key| std::env::var(key).ok())
        .map_err(|source| Error::Policy { source })?;
    if no_opt_in {
        policy.require_opt_in = false;
    }
    Ok(policy)
}

/// Execute a parsed command line.
pub async fn execute(cli: Cli) -> Result<Output, Error> {
    match cli.command {
        Command::Run(args) => run(args).await.map(|o| Output::Outcome(Box::new(o))),
        Command::Status(args) => status(args).await.map(Output::Status),
        Command::Event(args) => crate::event::run(&args).map(|i| Output::Event(Box::new(i))),
        Command::EksToken(args) => {
            let credential =
                selfheal_eks::exec_credential(&args.cluster_name, args.region.as_deref())
                    .await
                    .and_then(|credential| credential.to_cli_json())
                    .map_err(|source| Error::EksToken { source })?;
            // main adds the final newline; the text keeps awscli's blank line.
            let text = credential.strip_suffix('\n').unwrap_or(&credential);
            Ok(Output::ExecCredential(text.to_owned()))
        }
    }
}

async fn run(args: RunArgs) -> Result<RemediationOutcome, Error> {
    let text = read_request(&args.request)?;
    let mut request =
        RemediationRequest::from_json(&text).map_err(|source| Error::Request { source })?;
    if args.dry_run {
        request.dry_run = true;
    }
    let policy = policy_from_env(args.no_opt_in)?;
    match (&args.source.snapshot, &args.source.kubeconfig) {
        (Some(path), _) => {
            let mut snapshot = read_snapshot(path)?;
            let outcome = snapshot
                .remediate(&request, &policy, jiff::Timestamp::now())
                .map_err(|source| Error::Snapshot { source })?;
            if let Some(out) = &args.write_snapshot {
                let text = snapshot
                    .render()
                    .map_err(|source| Error::Snapshot { source })?;
                std::fs::write(out, text).map_err(|source| Error::Write {
                    path: out.clone(),
                    source,
                })?;
            }
            Ok(outcome)
        }
        (None, kubeconfig) => {
            let client =
                crate::live::client(kubeconfig.as_deref(), args.context.as_deref()).await?;
            crate::live::remediate(client, policy, &request).await
        }
    }
}

async fn status(args: StatusArgs) -> Result<RolloutStatus, Error> {
    let (namespace, name) = args
        .deployment
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| Error::DeploymentRef(args.deployment.clone()))?;
    match (&args.source.snapshot, &args.source.kubeconfig) {
        (Some(path), _) => read_snapshot(path)?
            .status(namespace, name)
            .map_err(|source| Error::Snapshot { source }),
        (None, kubeconfig) => {
            let client =
                crate::live::client(kubeconfig.as_deref(), args.context.as_deref()).await?;
            // Status reads only; the policy is irrelevant but the Remediator needs one.
            crate::live::status(client, Policy::default(), namespace, name).await
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

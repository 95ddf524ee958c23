import * as fs from "node:fs";
import * as path from "node:path";

import * as cdk from "aws-cdk-lib";
import * as eks from "aws-cdk-lib/aws-eks";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

import { ALL_FUNCTIONS, APPROVE, FunctionSpec, INGEST, KUBE_HANDLERS, NOTIFY } from "./functions";

export interface SelfhealStackProps extends cdk.StackProps {
  /**
   * Folder holding `<function>/bootstrap` for every function: cargo-lambda's
   * `target/lambda` after `cargo lambda build --release --arm64`, or a
   * placeholder folder when only the synthesized template is checked.
   */
  readonly assetDir: string;
  /** Folder holding the `*.asl.json` definitions (the SAM template's `DefinitionUri`s). */
  readonly stateMachineDir: string;
}

/** SSM path of the approval records `notify` writes and `approve` redeems. */
const APPROVAL_PARAM_PREFIX = "/selfheal/approvals";

/**
 * The selfheal stack, built from constructs rather than `CfnInclude` of
 * `template.yaml`: CfnInclude cannot expand the `AWS::Serverless` transform
 * and would keep SAM's local `CodeUri`/`DefinitionUri` paths, which only
 * `sam build`/`sam package` rewrite. The state machine definitions are the
 * very same `statemachines/*.asl.json` files (uploaded as assets, Lambda ARNs
 * filled in by `DefinitionSubstitutions`), so the two stacks cannot drift there.
 */
export class SelfhealStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: SelfhealStackProps) {
    super(scope, id, props);

    // ---- Parameters (same names and meaning as template.yaml) ----
    const clusterName = new cdk.CfnParameter(this, "ClusterName", {
      type: "String",
      description: "EKS cluster the handlers act on (DescribeCluster, access entry).",
      minLength: 1,
    });
    const kubernetesGroup = new cdk.CfnParameter(this, "KubernetesGroup", {
      type: "String",
      default: "selfheal",
      description: "Kubernetes group the handlers' role maps to; deploy/rbac.yaml binds it.",
    });
    const allowedNamespaces = new cdk.CfnParameter(this, "AllowedNamespaces", {
      type: "String",
      default: "",
      description: "Comma-separated namespaces selfheal may act in (empty = all but the denied ones).",
    });
    const dryRun = new cdk.CfnParameter(this, "DryRun", {
      type: "String",
      default: "false",
      allowedValues: ["true", "false"],
      description: "Every write becomes a server-side dry run.",
    });
    const cooldownSeconds = new cdk.CfnParameter(this, "CooldownSeconds", {
      type: "Number",
      default: 600,
      minValue: 0,
      description: "Same action on the same Deployment is refused within this window unless forced.",
    });
    const requireOptIn = new cdk.CfnParameter(this, "RequireOptIn", {
      type: "String",
      default: "true",
      allowedValues: ["true", "false"],
      description: "Act only on Deployments labelled selfheal.dev/enabled=true.",
    });
    const alarmNamePrefix = new cdk.CfnParameter(this, "AlarmNamePrefix", {
      type: "String",
      default: "selfheal-",
      minLength: 1,
      description: "CloudWatch alarms whose name starts with this opt in to remediation (EventBridge rule).",
    });
    const requireApproval = new cdk.CfnParameter(this, "RequireApproval", {
      type: "String",
      default: "false",
      allowedValues: ["true", "false"],
      description: "Ask a human before every non-dry-run action.",
    });
    const verifyIntervalSeconds = new cdk.CfnParameter(this, "VerifyIntervalSeconds", {
      type: "Number",
      default: 15,
      minValue: 1,
    });
    const verifyMaxAttempts = new cdk.CfnParameter(this, "VerifyMaxAttempts", {
      type: "Number",
      default: 40,
      minValue: 1,
    });
    const fleetMaxConcurrency = new cdk.CfnParameter(this, "FleetMaxConcurrency", {
      type: "Number",
      default: 20,
      minValue: 1,
    });

    const defaultAction = new cdk.CfnParameter(this, "DefaultAction", {
      type: "String",
      default: "",
      allowedValues: ["", "rollback", "pause", "resume", "restart"],
      description: "Action for alarms without a selfheal directive; empty = such alarms are rejected, never guessed.",
    });
    const slackWebhookParameter = new cdk.CfnParameter(this, "SlackWebhookParameter", {
      type: "String",
      default: "",
      allowedPattern: "^(/[A-Za-z0-9_.\\-/]+)?$",
      description:
        "Optional SSM SecureString parameter (full path, starting with /) holding a Slack incoming-webhook URL; empty = SNS only.",
    });

    const clusterArn = this.formatArn({
      service: "eks",
      resource: "cluster",
      resourceName: clusterName.valueAsString,
    });
    const approvalParamArn = this.formatArn({
      service: "ssm",
      resource: "parameter",
      resourceName: `${APPROVAL_PARAM_PREFIX.replace(/^\//, "")}/*`,
    });

    // ---- Functions ----
    const policyEnv: Record<string, string> = {
      SELFHEAL_DEFAULT_CLUSTER: clusterName.valueAsString,
      SELFHEAL_ALLOWED_NAMESPACES: allowedNamespaces.valueAsString,
      SELFHEAL_DRY_RUN: dryRun.valueAsString,
      SELFHEAL_COOLDOWN_SECONDS: cooldownSeconds.valueAsString,
      SELFHEAL_REQUIRE_OPT_IN: requireOptIn.valueAsString,
    };
    const fn = (spec: FunctionSpec, role: iam.IRole | undefined, environment: Record<string, string>) =>
      new lambda.Function(this, spec.id, {
        description: spec.description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: "bootstrap",
        code: lambda.Code.fromAsset(functionAssetDir(props.assetDir, spec.name)),
        memorySize: spec.memoryMiB,
        timeout: cdk.Duration.seconds(spec.timeoutSeconds),
        role,
        environment: { RUST_LOG: "info", ...environment },
      });

    // One role for the Kubernetes handlers: it is the principal the EKS access
    // entry maps to a Kubernetes group, so it must be the same for all of them.
    const handlerRole = new iam.Role(this, "HandlerRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "selfheal Kubernetes handlers (mapped to a Kubernetes group by the EKS access entry)",
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaBasicExecutionRole")],
    });
    handlerRole.addToPolicy(
      new iam.PolicyStatement({ actions: ["eks:DescribeCluster"], resources: [clusterArn] }),
    );
    const handlers = KUBE_HANDLERS.map((spec) => ({ spec, fn: fn(spec, handlerRole, policyEnv) }));
    const handler = (name: string): lambda.Function => {
      const found = handlers.find((h) => h.spec.name === name);
      if (!found) {
        throw new Error(`no Kubernetes handler named ${name}`);
      }
      return found.fn;
    };

    new eks.CfnAccessEntry(this, "HandlerAccessEntry", {
      clusterName: clusterName.valueAsString,
      principalArn: handlerRole.roleArn,
      kubernetesGroups: [kubernetesGroup.valueAsString],
      type: "STANDARD",
    });

    // Notifications: the topic humans subscribe to (mail, chat bridges).
    const notificationTopic = new sns.Topic(this, "NotificationTopic", {
      displayName: "selfheal remediation notifications",
    });

    const approve = fn(APPROVE, undefined, { SELFHEAL_APPROVAL_PARAM_PREFIX: APPROVAL_PARAM_PREFIX });
    const approveUrl = approve.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    approve.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ssm:GetParameter", "ssm:DeleteParameter"],
        resources: [approvalParamArn],
      }),
    );

    const notify = fn(NOTIFY, undefined, {
      SELFHEAL_TOPIC_ARN: notificationTopic.topicArn,
      SELFHEAL_APPROVAL_URL: approveUrl.url,
      SELFHEAL_APPROVAL_PARAM_PREFIX: APPROVAL_PARAM_PREFIX,
      SELFHEAL_SLACK_WEBHOOK_PARAM: slackWebhookParameter.valueAsString,
    });
    notificationTopic.grantPublish(notify);
    notify.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["ssm:PutParameter"], resources: [approvalParamArn] }),
    );
    // Reading the Slack webhook URL only when one is configured, and only that parameter.
    const slackConfigured = new cdk.CfnCondition(this, "SlackConfigured", {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(slackWebhookParameter.valueAsString, "")),
    });
    const slackPolicy = new iam.Policy(this, "NotifySlackWebhookPolicy", {
      roles: [notify.role as iam.IRole],
      statements: [
        new iam.PolicyStatement({
          actions: ["ssm:GetParameter"],
          // The parameter's name starts with "/", so it follows "parameter" directly.
          resources: [
            cdk.Fn.sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}", {
              Name: slackWebhookParameter.valueAsString,
            }),
          ],
        }),
      ],
    });
    (slackPolicy.node.defaultChild as iam.CfnPolicy).cfnOptions.condition = slackConfigured;

    // ---- State machines: the same definition files as template.yaml ----
    const deploymentDefinition = definitionFile(props.stateMachineDir, "remediate-deployment.asl.json");
    const deploymentMachine = new sfn.StateMachine(this, "RemediateDeploymentStateMachine", {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(deploymentDefinition),
      definitionSubstitutions: {
        NotifyFunctionArn: notify.functionArn,
        RollbackFunctionArn: handler("rollback").functionArn,
        PauseFunctionArn: handler("pause").functionArn,
        ResumeFunctionArn: handler("resume").functionArn,
        RestartFunctionArn: handler("restart").functionArn,
        VerifyFunctionArn: handler("verify").functionArn,
        RequireApproval: requireApproval.valueAsString,
        VerifyIntervalSeconds: verifyIntervalSeconds.valueAsString,
        VerifyMaxAttempts: verifyMaxAttempts.valueAsString,
      },
    });
    for (const invoked of [notify, ...handlers.map((h) => h.fn)]) {
      invoked.grantInvoke(deploymentMachine);
    }

    const fleetDefinition = definitionFile(props.stateMachineDir, "remediate-fleet.asl.json");
    const fleetMachine = new sfn.StateMachine(this, "RemediateFleetStateMachine", {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(fleetDefinition),
      definitionSubstitutions: {
        RemediateDeploymentStateMachineArn: deploymentMachine.stateMachineArn,
        NotifyFunctionArn: notify.functionArn,
        FleetMaxConcurrency: fleetMaxConcurrency.valueAsString,
      },
    });
    notify.grantInvoke(fleetMachine);
    // startExecution.sync:2 of the child machine: start it, watch and stop its
    // executions, and the managed EventBridge rule Step Functions uses to learn
    // that a child finished.
    deploymentMachine.grantStartExecution(fleetMachine);
    fleetMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["states:DescribeExecution", "states:StopExecution"],
        resources: [
          this.formatArn({
            service: "states",
            resource: "execution",
            arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
            resourceName: `${deploymentMachine.stateMachineName}:*`,
          }),
        ],
      }),
    );
    fleetMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources: [
          this.formatArn({
            service: "events",
            resource: "rule",
            resourceName: "StepFunctionsGetEventsForStepFunctionsExecutionRule",
          }),
        ],
      }),
    );

    // The approve links answer the deployment machine's waitForTaskToken step.
    // A separate policy, not approve's default one: the function must not wait
    // for the state machine, which waits for notify, which needs approve's URL.
    new iam.Policy(this, "ApproveTaskResponsePolicy", {
      roles: [approve.role as iam.IRole],
      statements: [
        new iam.PolicyStatement({
          actions: ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
          resources: [deploymentMachine.stateMachineArn],
        }),
      ],
    });

    // ---- Ingest: EventBridge alarms, SNS alarm actions, Alertmanager webhook ----
    const webhookSecret = new secretsmanager.Secret(this, "WebhookSecret", {
      description: "Bearer token Alertmanager sends to the selfheal webhook (http_config.authorization.credentials).",
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    const ingest = fn(INGEST, undefined, {
      SELFHEAL_STATE_MACHINE_ARN: deploymentMachine.stateMachineArn,
      SELFHEAL_WEBHOOK_SECRET_ARN: webhookSecret.secretArn,
      SELFHEAL_DEFAULT_CLUSTER: clusterName.valueAsString,
      SELFHEAL_DEFAULT_ACTION: defaultAction.valueAsString,
    });
    deploymentMachine.grantStartExecution(ingest);
    webhookSecret.grantRead(ingest);
    const webhookUrl = ingest.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });

    const alarmRule = new events.Rule(this, "AlarmStateChangeRule", {
      description: "CloudWatch alarms that opt in (name prefix) going to ALARM start a remediation.",
      eventPattern: {
        source: ["aws.cloudwatch"],
        detailType: ["CloudWatch Alarm State Change"],
        detail: {
          alarmName: events.Match.prefix(alarmNamePrefix.valueAsString),
          state: { value: ["ALARM"] },
        },
      },
    });
    alarmRule.addTarget(new targets.LambdaFunction(ingest, { retryAttempts: 2 }));

    // Alarm actions that publish to SNS instead of EventBridge.
    const alarmTopic = new sns.Topic(this, "AlarmTopic", {
      displayName: "selfheal alarm actions",
    });
    alarmTopic.addSubscription(new subscriptions.LambdaSubscription(ingest));

    // ---- Outputs (same names as template.yaml) ----
    new cdk.CfnOutput(this, "WebhookUrl", {
      value: webhookUrl.url,
      description: "Alertmanager webhook (bearer token: the WebhookSecret's value).",
    });
    new cdk.CfnOutput(this, "ApprovalUrl", { value: approveUrl.url });
    new cdk.CfnOutput(this, "RemediateDeploymentStateMachineArn", { value: deploymentMachine.stateMachineArn });
    new cdk.CfnOutput(this, "RemediateFleetStateMachineArn", { value: fleetMachine.stateMachineArn });
    new cdk.CfnOutput(this, "NotificationTopicArn", { value: notificationTopic.topicArn });
    new cdk.CfnOutput(this, "AlarmTopicArn", { value: alarmTopic.topicArn });
    new cdk.CfnOutput(this, "HandlerRoleArn", { value: handlerRole.roleArn });
    new cdk.CfnOutput(this, "WebhookSecretArn", { value: webhookSecret.secretArn });
  }
}

/** `<assetDir>/<name>`, which must hold the function's `bootstrap`. */
function functionAssetDir(assetDir: string, name: string): string {
  const dir = path.join(assetDir, name);
  if (!fs.existsSync(path.join(dir, "bootstrap"))) {
    throw new Error(
      `${dir}/bootstrap not found: run \`cargo lambda build --release --arm64\` at the repository root, ` +
        `or pass -c assetDir=<dir with <function>/bootstrap> (${ALL_FUNCTIONS.map((f) => f.name).join(", ")})`,
    );
  }
  return dir;
}

/** A definition file next to the SAM template; never a copy. */
function definitionFile(dir: string, file: string): string {
  const full = path.join(dir, file);
  if (!fs.existsSync(full)) {
    throw new Error(`state machine definition ${full} not found`);
  }
  return full;
}

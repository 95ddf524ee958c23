import * as fs from "node:fs";
import * as path from "node:path";

import * as cdk from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as eks from "aws-cdk-lib/aws-eks";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import * as ssm from "aws-cdk-lib/aws-ssm";
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
  /** `deploy/dashboard.json`: the dashboard body template.yaml carries too. */
  readonly dashboardFile: string;
}

/**
 * The selfheal stack of `template.yaml`, built from constructs rather than
 * `CfnInclude`: CfnInclude cannot expand the `AWS::Serverless` transform and
 * would keep SAM's local `CodeUri`/`DefinitionUri` paths, which only
 * `sam build`/`sam package` rewrite. Parameters, outputs, environment
 * variables and permissions follow template.yaml; the state machine
 * definitions are the very same `statemachines/*.asl.json` files (uploaded as
 * assets, ARNs filled in by `definitionSubstitutions`), so they cannot drift.
 */
export class SelfhealStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: SelfhealStackProps) {
    super(scope, id, props);

    // ---- Parameters (names, defaults and meaning of template.yaml) ----
    const param = (name: string, p: cdk.CfnParameterProps) => new cdk.CfnParameter(this, name, p);
    const clusterName = param("ClusterName", {
      type: "String",
      description:
        "EKS cluster the handlers act on (default for requests without target.cluster). Gets an access entry for the handlers' role.",
      allowedPattern: "^[0-9A-Za-z][A-Za-z0-9\\-_]{0,99}$",
    });
    const extraClusterArns = param("ExtraClusterArns", {
      type: "CommaDelimitedList",
      default: "",
      description:
        "Optional ARNs of further EKS clusters the handlers may DescribeCluster (create their access entries yourself, deploy/README.md).",
    });
    const subnetIds = param("SubnetIds", {
      type: "CommaDelimitedList",
      default: "",
      description:
        'Optional subnets for the Kubernetes handlers (rollback, pause, resume, restart, verify), for clusters with a private endpoint; set with SecurityGroupIds. They need VPC endpoints or a NAT (deploy/README.md "Private cluster endpoints").',
    });
    const securityGroupIds = param("SecurityGroupIds", {
      type: "CommaDelimitedList",
      default: "",
      description:
        "Optional security groups for the Kubernetes handlers in SubnetIds; allow them on the cluster security group, TCP 443.",
    });
    // CDK's validation reads the empty defaults as ids; the InVpc condition
    // keeps VpcConfig out unless both lists are set (cfn-lint on the
    // synthesized template, which evaluates conditions, stays clean).
    for (const id of ["CloudFormation-Validate::E1150", "CloudFormation-Validate::F3031"]) {
      cdk.Validations.of(this).acknowledge({
        id,
        reason: "SubnetIds and SecurityGroupIds default to empty; VpcConfig is under the InVpc condition",
      });
    }
    const clusterRoleArns = param("ClusterRoleArns", {
      type: "CommaDelimitedList",
      default: "",
      description:
        "Optional IAM role ARNs in workload accounts; the Kubernetes handlers assume the one in a cluster ARN's account (SELFHEAL_CLUSTER_ROLES, deploy/README.md \"Other accounts and regions\").",
    });
    const kubernetesGroup = param("KubernetesGroup", {
      type: "String",
      default: "selfheal-remediators",
      description: "Kubernetes group the handlers' role maps to; deploy/rbac.yaml binds it.",
    });
    const allowedNamespaces = param("AllowedNamespaces", {
      type: "String",
      default: "",
      description: "Comma-separated namespaces selfheal may act in (empty = all but the denied ones).",
    });
    const deniedNamespaces = param("DeniedNamespaces", {
      type: "String",
      default: "kube-system,kube-public,kube-node-lease",
      description:
        "Comma-separated namespaces selfheal never acts in. NONE (uppercase, alone) denies no namespace; empty means the same default list.",
    });
    const requireOptIn = param("RequireOptIn", {
      type: "String",
      default: "true",
      allowedValues: ["true", "false"],
      description: "Act only on Deployments labelled selfheal.dev/enabled=true.",
    });
    const dryRun = param("DryRun", {
      type: "String",
      default: "false",
      allowedValues: ["true", "false"],
      description: "Default dry run (server-side dryRun=All) for every action.",
    });
    const cooldownSeconds = param("CooldownSeconds", {
      type: "Number",
      default: 600,
      minValue: 0,
      description: "Same action on the same Deployment is refused within this window unless force.",
    });
    const pauseImpactThreshold = param("PauseImpactThreshold", {
      type: "String",
      default: "1.5",
      description: "Alarm-driven pause applies at or above this impact score.",
    });
    const maxActions = param("MaxActions", {
      type: "Number",
      default: 0,
      minValue: 0,
      description:
        "At most this many Deployments acted on per ActionWindowSeconds (guard rateLimit); 0 = no limit. With RoleBindings per namespace, set AllowedNamespaces too (deploy/README.md).",
    });
    const actionWindowSeconds = param("ActionWindowSeconds", {
      type: "Number",
      default: 3600,
      minValue: 1,
      description: "Sliding window, in seconds, that MaxActions counts over.",
    });
    const defaultAction = param("DefaultAction", {
      type: "String",
      default: "",
      allowedValues: ["", "rollback", "pause", "resume", "restart"],
      description:
        "Action for alarms whose selfheal directive names none; empty = such alarms are rejected (docs/alarms.md).",
    });
    const requireApproval = param("RequireApproval", {
      type: "String",
      default: "false",
      allowedValues: ["true", "false"],
      description: "Ask a human (approve/deny links) before every non-pause, non-dry-run action.",
    });
    const alarmNamePrefix = param("AlarmNamePrefix", {
      type: "String",
      default: "selfheal-",
      minLength: 1,
      description:
        "CloudWatch alarms whose name starts with this (or whose description has a `selfheal:` line) start remediations.",
    });
    const verifyIntervalSeconds = param("VerifyIntervalSeconds", {
      type: "Number",
      default: 0,
      minValue: 0,
      description:
        "Seconds of pause between two rollout watch windows, 0 for none (verify watches up to 660 s per call, in 15 s watch requests, and answers the moment the rollout is done or failed; a window ends before the budget only at that cap or when the EKS token is due, so no pause is needed).",
    });
    const verifyTimeoutSeconds = param("VerifyTimeoutSeconds", {
      type: "Number",
      default: 660,
      minValue: 1,
      description:
        "Seconds of watching before a still-progressing rollout counts as failed (default covers the 600 s progress deadline; the budget 66 checks 10 s apart gave before).",
    });
    const fleetMaxConcurrency = param("FleetMaxConcurrency", {
      type: "Number",
      default: 20,
      minValue: 1,
      maxValue: 40,
      description: "Targets remediated at once by remediate-fleet (when the input gives no maxConcurrency).",
    });
    const fleetMaxTargets = param("FleetMaxTargets", {
      type: "Number",
      default: 100,
      minValue: 1,
      maxValue: 100,
      description:
        "Most targets one remediate-fleet execution accepts; a longer list fails with TooManyTargets before anything starts (docs/limits.md).",
    });
    const maxAlertsPerWebhook = param("MaxAlertsPerWebhook", {
      type: "Number",
      default: 100,
      minValue: 1,
      maxValue: 1000,
      description:
        "Most alerts one Alertmanager notification may carry; more get 400 and start nothing. Set Alertmanager's max_alerts at or below it (docs/limits.md).",
    });
    const ingestReservedConcurrency = param("IngestReservedConcurrency", {
      type: "Number",
      default: 10,
      minValue: 0,
      maxValue: 1000,
      description:
        "Concurrent executions reserved for ingest, and its cap. Its Function URL is public, so a flood cannot take the account's concurrency from the remediation handlers (deploy/README.md). 0 reserves nothing and caps nothing.",
    });
    const approveReservedConcurrency = param("ApproveReservedConcurrency", {
      type: "Number",
      default: 5,
      minValue: 0,
      maxValue: 1000,
      description:
        "Concurrent executions reserved for approve, and its cap (public Function URL, as for ingest). 0 reserves nothing and caps nothing.",
    });
    const notificationEmail = param("NotificationEmail", {
      type: "String",
      default: "",
      description: "Optional e-mail address subscribed to the notification topic.",
    });
    const slackWebhookSecretArn = param("SlackWebhookSecretArn", {
      type: "String",
      default: "",
      description: "Optional Secrets Manager secret holding a Slack incoming-webhook URL.",
    });
    // The parameter is the secret's ARN, not the secret: nothing to hide with NoEcho.
    cdk.Validations.of(this).acknowledge({
      id: "CloudFormation-Validate::W2509",
      reason: "SlackWebhookSecretArn is an ARN naming the secret, not its value",
    });
    const createExampleAlarms = param("CreateExampleAlarms", {
      type: "String",
      default: "false",
      allowedValues: ["true", "false"],
      description: "Create example CloudWatch alarms that carry their remediation directive.",
    });
    const exampleNamespace = param("ExampleNamespace", {
      type: "String",
      default: "shop",
      description: "Namespace watched by the example alarms.",
    });
    const exampleDeployment = param("ExampleDeployment", {
      type: "String",
      default: "checkout",
      description: "Deployment (Container Insights PodName) watched by the example alarms.",
    });
    const logRetentionDays = param("LogRetentionDays", {
      type: "Number",
      // A string, like AllowedValues (CfnParameterProps types them string[]).
      default: "30",
      allowedValues: ["7", "14", "30", "60", "90", "180", "365"],
    });

    // ---- Conditions ----
    const condition = (name: string, expression: cdk.ICfnConditionExpression) =>
      new cdk.CfnCondition(this, name, { expression });
    const notEmpty = (value: string) => cdk.Fn.conditionNot(cdk.Fn.conditionEquals(value, ""));
    const inVpc = condition(
      "InVpc",
      cdk.Fn.conditionAnd(
        notEmpty(cdk.Fn.join("", subnetIds.valueAsList)),
        notEmpty(cdk.Fn.join("", securityGroupIds.valueAsList)),
      ),
    );
    const hasClusterRoles = condition("HasClusterRoles", notEmpty(cdk.Fn.join("", clusterRoleArns.valueAsList)));
    const hasExtraClusters = condition("HasExtraClusters", notEmpty(cdk.Fn.join("", extraClusterArns.valueAsList)));
    const hasEmail = condition("HasEmail", notEmpty(notificationEmail.valueAsString));
    const hasSlack = condition("HasSlack", notEmpty(slackWebhookSecretArn.valueAsString));
    const createExamples = condition(
      "CreateExamples",
      cdk.Fn.conditionEquals(createExampleAlarms.valueAsString, "true"),
    );
    // 0 leaves the function in the account's unreserved pool (accounts whose
    // concurrency limit cannot spare a reservation); Lambda itself would read
    // 0 as "throttle every invocation".
    const capIngestConcurrency = condition(
      "CapIngestConcurrency",
      cdk.Fn.conditionNot(cdk.Fn.conditionEquals(ingestReservedConcurrency.valueAsString, "0")),
    );
    const capApproveConcurrency = condition(
      "CapApproveConcurrency",
      cdk.Fn.conditionNot(cdk.Fn.conditionEquals(approveReservedConcurrency.valueAsString, "0")),
    );
    /** Reserve (and cap) `fn`'s concurrency at `param`, unless the condition says 0. */
    const reserveConcurrency = (fn: lambda.Function, when: cdk.CfnCondition, param: cdk.CfnParameter) => {
      (fn.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = cdk.Token.asNumber(
        cdk.Fn.conditionIf(when.logicalId, param.valueAsNumber, cdk.Aws.NO_VALUE),
      );
    };
    /** A separate policy that exists only under `when` (SAM's `!If [Cond, policy, !Ref AWS::NoValue]`). */
    const conditionalPolicy = (name: string, role: iam.IRole, when: cdk.CfnCondition, st: iam.PolicyStatement) => {
      const policy = new iam.Policy(this, name, { roles: [role], statements: [st] });
      (policy.node.defaultChild as iam.CfnPolicy).cfnOptions.condition = when;
    };

    const approvalPrefix = `/selfheal/${cdk.Aws.STACK_NAME}/approvals`;
    const approvalParamArn = `arn:${cdk.Aws.PARTITION}:ssm:${cdk.Aws.REGION}:${cdk.Aws.ACCOUNT_ID}:parameter${approvalPrefix}/*`;
    const clusterArn = this.formatArn({ service: "eks", resource: "cluster", resourceName: clusterName.valueAsString });

    // ---- Functions (template.yaml's Globals: provided.al2023, arm64, 256 MB, X-Ray, JSON logs) ----
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
        tracing: lambda.Tracing.ACTIVE,
        loggingFormat: lambda.LoggingFormat.JSON,
        // Lambda would create /aws/lambda/<fn> itself, without retention.
        logGroup: new logs.LogGroup(this, `${spec.id}Logs`, {
          retention: logRetentionDays.valueAsNumber as logs.RetentionDays,
        }),
        environment: { RUST_LOG: "info", ...environment },
      });

    // One role for the Kubernetes handlers: it is the principal the EKS access
    // entry maps to a Kubernetes group, so it must be the same for all of them.
    const handlerRole = new iam.Role(this, "HandlerRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "selfheal Kubernetes handlers (the EKS access entry maps it to KubernetesGroup)",
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaBasicExecutionRole")],
    });
    // Private cluster endpoints: the VPC access policy only when the handlers run in SubnetIds.
    handlerRole.addManagedPolicy(
      iam.ManagedPolicy.fromManagedPolicyArn(
        this,
        "HandlerVpcAccess",
        cdk.Token.asString(
        cdk.Fn.conditionIf(
          inVpc.logicalId,
          `arn:${cdk.Aws.PARTITION}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole`,
            cdk.Aws.NO_VALUE,
          ),
        ),
      ),
    );
    handlerRole.addToPolicy(new iam.PolicyStatement({ actions: ["eks:DescribeCluster"], resources: [clusterArn] }));
    conditionalPolicy(
      "HandlerExtraClustersPolicy",
      handlerRole,
      hasExtraClusters,
      new iam.PolicyStatement({ actions: ["eks:DescribeCluster"], resources: extraClusterArns.valueAsList }),
    );
    conditionalPolicy(
      "HandlerClusterRolesPolicy",
      handlerRole,
      hasClusterRoles,
      new iam.PolicyStatement({ actions: ["sts:AssumeRole"], resources: clusterRoleArns.valueAsList }),
    );
    // The off switch (template.yaml's OffSwitch): `on` acts; any other value
    // stops every new action within the functions' 10 s cache.
    const offSwitch = new ssm.StringParameter(this, "OffSwitch", {
      parameterName: `/selfheal/${cdk.Aws.STACK_NAME}/switch`,
      // The name is a token (stack name); it starts with "/".
      simpleName: false,
      stringValue: "on",
      description:
        "selfheal off switch. on = act; off (or any other value) = the action functions answer disabled and ingest starts nothing.",
    });
    const offSwitchArn = `arn:${cdk.Aws.PARTITION}:ssm:${cdk.Aws.REGION}:${cdk.Aws.ACCOUNT_ID}:parameter/selfheal/${cdk.Aws.STACK_NAME}/switch`;
    const readOffSwitch = new iam.PolicyStatement({ actions: ["ssm:GetParameter"], resources: [offSwitchArn] });
    handlerRole.addToPolicy(readOffSwitch);
    const handlerEnv: Record<string, string> = {
      SELFHEAL_DEFAULT_CLUSTER: clusterName.valueAsString,
      SELFHEAL_REQUIRE_OPT_IN: requireOptIn.valueAsString,
      SELFHEAL_ALLOWED_NAMESPACES: allowedNamespaces.valueAsString,
      SELFHEAL_DENIED_NAMESPACES: deniedNamespaces.valueAsString,
      SELFHEAL_COOLDOWN_SECONDS: cooldownSeconds.valueAsString,
      SELFHEAL_DRY_RUN: dryRun.valueAsString,
      SELFHEAL_PAUSE_IMPACT_THRESHOLD: pauseImpactThreshold.valueAsString,
      SELFHEAL_MAX_ACTIONS: maxActions.valueAsString,
      SELFHEAL_ACTION_WINDOW_SECONDS: actionWindowSeconds.valueAsString,
      SELFHEAL_CLUSTER_ROLES: cdk.Fn.join(",", clusterRoleArns.valueAsList),
      // Read by rollback, pause, resume and restart; verify ignores it.
      SELFHEAL_SWITCH_PARAMETER: offSwitch.parameterName,
    };
    const handlers = new Map(KUBE_HANDLERS.map((spec) => [spec.name, fn(spec, handlerRole, handlerEnv)]));
    for (const kube of handlers.values()) {
      (kube.node.defaultChild as lambda.CfnFunction).vpcConfig = cdk.Token.asAny(
        cdk.Fn.conditionIf(
          inVpc.logicalId,
          { SubnetIds: subnetIds.valueAsList, SecurityGroupIds: securityGroupIds.valueAsList },
          cdk.Aws.NO_VALUE,
        ),
      ) as unknown as lambda.CfnFunction.VpcConfigProperty;
    }
    const handler = (name: string): lambda.Function => {
      const found = handlers.get(name);
      if (!found) {
        throw new Error(`no Kubernetes handler named ${name}`);
      }
      return found;
    };

    new eks.CfnAccessEntry(this, "HandlerAccessEntry", {
      clusterName: clusterName.valueAsString,
      principalArn: handlerRole.roleArn,
      type: "STANDARD",
      kubernetesGroups: [kubernetesGroup.valueAsString],
    });

    // ---- Notification ----
    // A customer managed key, not alias/aws/sns: selfheal's own alarms publish
    // to this topic, and CloudWatch can use only a key whose policy lets
    // cloudwatch.amazonaws.com encrypt. The messages carry approval links.
    const cloudWatchOfThisAccount = {
      principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
      conditions: { StringEquals: { "aws:SourceAccount": cdk.Aws.ACCOUNT_ID } },
    };
    const notificationKey = new kms.Key(this, "NotificationKey", {
      description: "selfheal notification topic (SNS encryption; CloudWatch alarms publish too)",
      enableKeyRotation: true,
    });
    notificationKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsOfThisAccount",
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        ...cloudWatchOfThisAccount,
      }),
    );
    const notificationTopic = new sns.Topic(this, "NotificationTopic", {
      displayName: "selfheal",
      masterKey: notificationKey,
    });
    notificationTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsOfThisAccount",
        actions: ["sns:Publish"],
        resources: [notificationTopic.topicArn],
        ...cloudWatchOfThisAccount,
      }),
    );
    const email = new sns.Subscription(this, "NotificationEmailSubscription", {
      topic: notificationTopic,
      protocol: sns.SubscriptionProtocol.EMAIL,
      endpoint: notificationEmail.valueAsString,
    });
    (email.node.defaultChild as sns.CfnSubscription).cfnOptions.condition = hasEmail;

    const approve = fn(APPROVE, undefined, { SELFHEAL_APPROVAL_PARAM_PREFIX: approvalPrefix });
    // The unguessable, single-use link id is the credential (opened from mail/Slack without AWS credentials).
    const approveUrl = approve.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    // Public URL: a flood is throttled here (429) instead of using up the
    // account's concurrency; humans clicking links need a handful.
    reserveConcurrency(approve, capApproveConcurrency, approveReservedConcurrency);
    approve.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["ssm:GetParameter", "ssm:DeleteParameter"], resources: [approvalParamArn] }),
    );

    const notify = fn(NOTIFY, undefined, {
      SELFHEAL_TOPIC_ARN: notificationTopic.topicArn,
      SELFHEAL_APPROVAL_URL: approveUrl.url,
      SELFHEAL_APPROVAL_PARAM_PREFIX: approvalPrefix,
      SELFHEAL_SLACK_WEBHOOK_SECRET_ARN: slackWebhookSecretArn.valueAsString,
    });
    notificationTopic.grantPublish(notify);
    // PutParameter writes a record; GetParametersByPath counts one Deployment's
    // folder (approvals/<scope>) for the pending cap.
    notify.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["ssm:PutParameter", "ssm:GetParametersByPath"], resources: [approvalParamArn] }),
    );
    conditionalPolicy(
      "NotifySlackWebhookPolicy",
      notify.role as iam.IRole,
      hasSlack,
      new iam.PolicyStatement({
        actions: ["secretsmanager:GetSecretValue"],
        resources: [slackWebhookSecretArn.valueAsString],
      }),
    );

    // ---- State machines: the same definition files as template.yaml ----
    const stateMachineLogs = new logs.LogGroup(this, "StateMachineLogs", {
      logGroupName: `/aws/vendedlogs/states/${cdk.Aws.STACK_NAME}`,
      retention: logRetentionDays.valueAsNumber as logs.RetentionDays,
    });
    const logOptions: sfn.LogOptions = {
      destination: stateMachineLogs,
      level: sfn.LogLevel.ERROR,
      includeExecutionData: false,
    };

    const deploymentMachine = new sfn.StateMachine(this, "RemediateDeploymentStateMachine", {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(definitionFile(props.stateMachineDir, "remediate-deployment.asl.json")),
      definitionSubstitutions: {
        RollbackFunctionArn: handler("rollback").functionArn,
        PauseFunctionArn: handler("pause").functionArn,
        ResumeFunctionArn: handler("resume").functionArn,
        RestartFunctionArn: handler("restart").functionArn,
        VerifyFunctionArn: handler("verify").functionArn,
        NotifyFunctionArn: notify.functionArn,
        RequireApproval: requireApproval.valueAsString,
        VerifyIntervalSeconds: verifyIntervalSeconds.valueAsString,
        VerifyTimeoutSeconds: verifyTimeoutSeconds.valueAsString,
      },
      tracingEnabled: true,
      logs: logOptions,
    });
    for (const invoked of [...handlers.values(), notify]) {
      invoked.grantInvoke(deploymentMachine);
    }

    const fleetMachine = new sfn.StateMachine(this, "RemediateFleetStateMachine", {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(definitionFile(props.stateMachineDir, "remediate-fleet.asl.json")),
      definitionSubstitutions: {
        RemediateDeploymentStateMachineArn: deploymentMachine.stateMachineArn,
        NotifyFunctionArn: notify.functionArn,
        FleetMaxConcurrency: fleetMaxConcurrency.valueAsString,
        FleetMaxTargets: fleetMaxTargets.valueAsString,
      },
      tracingEnabled: true,
      logs: logOptions,
    });
    notify.grantInvoke(fleetMachine);
    // startExecution.sync:2 of the child machine: start it, watch and stop its
    // executions, and the managed EventBridge rule through which Step Functions
    // learns that a child finished.
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

    // The approval links answer the deployment machine's waitForTaskToken step.
    // A separate policy, not approve's default one: CDK makes a function wait
    // for its default policy, and this one waits for the state machine, which
    // waits for notify, which needs approve's URL (a circular dependency).
    new iam.Policy(this, "ApproveTaskResponsePolicy", {
      roles: [approve.role as iam.IRole],
      statements: [
        new iam.PolicyStatement({
          actions: ["states:SendTaskSuccess", "states:SendTaskFailure"],
          resources: [deploymentMachine.stateMachineArn],
        }),
      ],
    });

    // ---- Ingest: EventBridge alarms, SNS alarm actions, Alertmanager webhook ----
    const webhookSecret = new secretsmanager.Secret(this, "WebhookSecret", {
      description: "Bearer token Alertmanager sends to the ingest Function URL (Authorization header).",
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    const ingest = fn(INGEST, undefined, {
      SELFHEAL_STATE_MACHINE_ARN: deploymentMachine.stateMachineArn,
      SELFHEAL_WEBHOOK_SECRET_ARN: webhookSecret.secretArn,
      SELFHEAL_DEFAULT_CLUSTER: clusterName.valueAsString,
      SELFHEAL_DEFAULT_ACTION: defaultAction.valueAsString,
      SELFHEAL_MAX_ALERTS_PER_WEBHOOK: maxAlertsPerWebhook.valueAsString,
      SELFHEAL_SWITCH_PARAMETER: offSwitch.parameterName,
    });
    deploymentMachine.grantStartExecution(ingest);
    ingest.addToRolePolicy(readOffSwitch);
    ingest.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [webhookSecret.secretArn] }),
    );
    // Alertmanager cannot sign SigV4; the function checks the bearer token from WebhookSecret.
    const webhookUrl = ingest.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    // Public URL: a flood is throttled here (429) instead of using up the
    // account's concurrency, which would throttle the remediation handlers
    // mid-incident. Throttled alarm events (EventBridge, SNS) are retried by
    // Lambda's asynchronous invocation; one webhook takes well under a second.
    reserveConcurrency(ingest, capIngestConcurrency, ingestReservedConcurrency);

    const alarmRule = new events.Rule(this, "AlarmStateChangeRule", {
      description: "CloudWatch alarms that opt in (name prefix or a selfheal: line) going to ALARM start a remediation.",
      eventPattern: {
        source: ["aws.cloudwatch"],
        detailType: ["CloudWatch Alarm State Change"],
        detail: {
          state: { value: ["ALARM"] },
          $or: [
            { alarmName: [{ prefix: alarmNamePrefix.valueAsString }] },
            { configuration: { description: [{ wildcard: "*selfheal:*" }] } },
          ],
        },
      },
    });
    alarmRule.addTarget(new targets.LambdaFunction(ingest));

    // Alarm actions that publish to SNS instead of EventBridge. Not encrypted
    // with alias/aws/sns: CloudWatch alarms cannot use that key (its policy
    // cannot grant them kms:GenerateDataKey), so their publishes would fail;
    // alarm state changes carry no secrets.
    const alarmTopic = new sns.Topic(this, "AlarmTopic", { displayName: "selfheal alarms" });
    alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsOfThisAccount",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [alarmTopic.topicArn],
        conditions: { StringEquals: { "aws:SourceAccount": cdk.Aws.ACCOUNT_ID } },
      }),
    );
    alarmTopic.addSubscription(new subscriptions.LambdaSubscription(ingest));

    // ---- Example IaC alarms: each carries its remediation in a `selfheal:` line ----
    const exampleAlarm = (
      id: string,
      suffix: string,
      text: string,
      action: string,
      metricName: string,
      statistic: string,
      threshold: number,
      extra: Partial<cloudwatch.CfnAlarmProps>,
    ) => {
      const alarm = new cloudwatch.CfnAlarm(this, id, {
        alarmName: `${alarmNamePrefix.valueAsString}${exampleDeployment.valueAsString}-${suffix}`,
        alarmDescription:
          `${text}\nselfheal: action=${action} cluster=${clusterName.valueAsString} ` +
          `namespace=${exampleNamespace.valueAsString} deployment=${exampleDeployment.valueAsString}`,
        namespace: "ContainerInsights",
        metricName,
        dimensions: [
          { name: "ClusterName", value: clusterName.valueAsString },
          { name: "Namespace", value: exampleNamespace.valueAsString },
          { name: "PodName", value: exampleDeployment.valueAsString },
        ],
        statistic,
        period: 60,
        evaluationPeriods: 3,
        threshold,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        ...extra,
      });
      alarm.cfnOptions.condition = createExamples;
    };
    const target = `${exampleNamespace.valueAsString}/${exampleDeployment.valueAsString}`;
    exampleAlarm(
      "ExampleCrashLoopAlarm",
      "restarts",
      `Containers of ${target} keep restarting after a deploy.`,
      "rollback",
      "pod_number_of_container_restarts",
      "Maximum",
      3,
      { datapointsToAlarm: 2 },
    );
    exampleAlarm(
      "ExampleCpuPauseAlarm",
      "cpu",
      `CPU of ${target} far above normal during a rollout: freeze it and ask.`,
      "pause",
      "pod_cpu_utilization",
      "Average",
      80,
      // Also via SNS (the second delivery path); ingest's deterministic
      // execution names make the duplicate a no-op.
      { alarmActions: [alarmTopic.topicArn] },
    );

    // ---- selfheal's own health: dashboard and alarms (template.yaml's) ----
    // The dashboard is deploy/dashboard.json, the file template.yaml carries
    // on one line; its `${...}` names are template.yaml's logical ids.
    const functionNames: Record<string, string> = {
      ApproveFunction: approve.functionName,
      IngestFunction: ingest.functionName,
      NotifyFunction: notify.functionName,
    };
    for (const spec of KUBE_HANDLERS) {
      functionNames[spec.id] = handlers.get(spec.name)!.functionName;
    }
    new cloudwatch.CfnDashboard(this, "Dashboard", {
      dashboardName: `${cdk.Aws.STACK_NAME}-selfheal`,
      dashboardBody: cdk.Fn.sub(fs.readFileSync(props.dashboardFile, "utf8"), {
        ...functionNames,
        RemediateDeploymentStateMachine: deploymentMachine.stateMachineArn,
        RemediateFleetStateMachine: fleetMachine.stateMachineArn,
      }),
    });
    // Names outside AlarmNamePrefix, no `selfheal:` line: ingest never acts on them.
    const sumOf = (id: string, namespace: string, metricName: string, dimensions: cloudwatch.CfnAlarm.DimensionProperty[]) => ({
      id,
      returnData: false,
      metricStat: { metric: { namespace, metricName, dimensions }, period: 300, stat: "Sum" },
    });
    const machine = (arn: string) => [{ name: "StateMachineArn", value: arn }];
    const refused = ["rollback", "pause", "resume", "restart"].map((action) =>
      sumOf(`refused${action[0].toUpperCase()}${action.slice(1)}`, "Selfheal", "Remediations", [
        { name: "Action", value: action },
        { name: "Status", value: "refused" },
      ]),
    );
    const health = {
      evaluationPeriods: 1,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      treatMissingData: "notBreaching",
      alarmActions: [notificationTopic.topicArn],
    };
    new cloudwatch.CfnAlarm(this, "ExecutionsFailedAlarm", {
      alarmName: `stack-${cdk.Aws.STACK_NAME}-executions-failed`,
      alarmDescription:
        "remediate-deployment or remediate-fleet executions failed or timed out, beyond the ones a guard's refusal ended (those are notified already).",
      metrics: [
        {
          id: "unexpected",
          label: "failed or timed out, refusals excluded",
          returnData: true,
          expression: `FILL(failed, 0) + FILL(timedOut, 0) + FILL(fleetFailed, 0) - ${refused.map((r) => `FILL(${r.id}, 0)`).join(" - ")}`,
        },
        sumOf("failed", "AWS/States", "ExecutionsFailed", machine(deploymentMachine.stateMachineArn)),
        sumOf("timedOut", "AWS/States", "ExecutionsTimedOut", machine(deploymentMachine.stateMachineArn)),
        sumOf("fleetFailed", "AWS/States", "ExecutionsFailed", machine(fleetMachine.stateMachineArn)),
        ...refused,
      ],
      ...health,
    });
    new cloudwatch.CfnAlarm(this, "IngestErrorsAlarm", {
      alarmName: `stack-${cdk.Aws.STACK_NAME}-ingest-errors`,
      alarmDescription:
        "The ingest function answered errors: alarms or webhooks may not have started their remediations (its log names each errorType).",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: [{ name: "FunctionName", value: ingest.functionName }],
      statistic: "Sum",
      period: 300,
      ...health,
    });

    // ---- Outputs (names of template.yaml) ----
    // Construct ids must differ from the parameters' (KubernetesGroup is
    // both); the logical ids stay those of template.yaml.
    const output = (name: string, value: string, description?: string) =>
      new cdk.CfnOutput(this, `${name}Output`, { value, description }).overrideLogicalId(name);
    output(
      "WebhookUrl",
      webhookUrl.url,
      "Alertmanager webhook_configs url (it sends the WebhookSecret value as a bearer token).",
    );
    output("WebhookSecretArn", webhookSecret.secretArn, "Secrets Manager secret with the webhook bearer token.");
    output("ApprovalUrl", approveUrl.url, "Base URL of the approval links.");
    output("RemediateDeploymentStateMachineArn", deploymentMachine.stateMachineArn);
    output("RemediateFleetStateMachineArn", fleetMachine.stateMachineArn);
    output(
      "SwitchParameterName",
      offSwitch.parameterName,
      "Off switch (SSM String parameter): aws ssm put-parameter --name <this> --type String --value off --overwrite stops every new action; --value on resumes.",
    );
    output(
      "AlarmRuleName",
      alarmRule.ruleName,
      "EventBridge rule sending CloudWatch alarm state changes to ingest (aws events disable-rule --name <this>).",
    );
    output(
      "IngestFunctionName",
      ingest.functionName,
      "The ingest function (alarms, SNS alarm actions, Alertmanager webhook).",
    );
    output("NotificationTopicArn", notificationTopic.topicArn);
    output(
      "AlarmTopicArn",
      alarmTopic.topicArn,
      "Point CloudWatch alarm actions here (alternative to the EventBridge rule).",
    );
    output("HandlerRoleArn", handlerRole.roleArn);
    output("KubernetesGroup", kubernetesGroup.valueAsString, "Group bound by deploy/rbac.yaml.");
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

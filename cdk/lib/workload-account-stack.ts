import * as cdk from "aws-cdk-lib";
import * as eks from "aws-cdk-lib/aws-eks";
import * as iam from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

/**
 * `deploy/workload-account.yaml` as a CDK stack, deployed in each workload
 * account (and cluster region) whose cluster selfheal reaches from the
 * tooling account: the role the Kubernetes handlers assume (trust policy on
 * the selfheal stack's `HandlerRoleArn`, session names `selfheal*`),
 * `eks:DescribeCluster` on that cluster, and the access entry mapping the
 * role to the Kubernetes group `deploy/rbac.yaml` binds. L1 constructs with
 * the YAML's logical ids, so `scripts/check-workload.mjs` can require the
 * two templates to be the same and neither drifts.
 */
export class WorkloadAccountStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);
    this.templateOptions.templateFormatVersion = "2010-09-09";
    this.templateOptions.description =
      "selfheal in a workload account: the role selfheal's Kubernetes handlers assume from the tooling account (trust policy), DescribeCluster on this account's cluster, and the EKS access entry mapping the role to the Kubernetes group deploy/rbac.yaml binds. Deploy once per workload account and cluster region; pass the output RoleArn to the selfheal stack's ClusterRoleArns (deploy/README.md \"Other accounts and regions\").";

    const handlerRoleArn = new cdk.CfnParameter(this, "HandlerRoleArn", {
      type: "String",
      description: "ARN of the selfheal stack's HandlerRole in the tooling account (its output or the IAM console).",
      allowedPattern: "^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
    });
    const clusterName = new cdk.CfnParameter(this, "ClusterName", {
      type: "String",
      description: "EKS cluster in this account and region that selfheal acts on.",
      allowedPattern: "^[0-9A-Za-z][A-Za-z0-9\\-_]{0,99}$",
    });
    const kubernetesGroup = new cdk.CfnParameter(this, "KubernetesGroup", {
      type: "String",
      default: "selfheal-remediators",
      description: "Kubernetes group the role maps to; deploy/rbac.yaml binds it.",
    });

    const role = new iam.CfnRole(this, "RemediationRole", {
      description: "Assumed by selfheal's Kubernetes handlers (tooling account) to reach this account's cluster.",
      maxSessionDuration: 3600,
      assumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { AWS: handlerRoleArn.valueAsString },
            Action: "sts:AssumeRole",
            // selfheal names every session selfheal-<execution>.
            Condition: { StringLike: { "sts:RoleSessionName": "selfheal*" } },
          },
        ],
      },
      policies: [
        {
          policyName: "describe-cluster",
          policyDocument: {
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Action: "eks:DescribeCluster",
                Resource: cdk.Fn.sub(
                  "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}",
                ),
              },
            ],
          },
        },
      ],
    });
    role.overrideLogicalId("RemediationRole");

    const entry = new eks.CfnAccessEntry(this, "RemediationAccessEntry", {
      clusterName: clusterName.valueAsString,
      principalArn: role.attrArn,
      type: "STANDARD",
      kubernetesGroups: [kubernetesGroup.valueAsString],
    });
    entry.overrideLogicalId("RemediationAccessEntry");

    new cdk.CfnOutput(this, "RoleArn", {
      description: "Add to the selfheal stack's ClusterRoleArns.",
      value: role.attrArn,
    });
  }
}

#!/usr/bin/env node
import * as path from "node:path";

import * as cdk from "aws-cdk-lib";

import { SelfhealStack } from "../lib/selfheal-stack";

// dist/bin/selfheal.js -> cdk/ -> repository root
const appDir = path.resolve(__dirname, "..", "..");
const repoRoot = path.resolve(appDir, "..");

const app = new cdk.App();

/** A context value as a path, relative ones taken from the cdk/ folder. */
function contextPath(key: string, fallback: string): string {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === "string" && value !== "" ? path.resolve(appDir, value) : fallback;
}
const stackName: unknown = app.node.tryGetContext("stackName");

// No `env`: the stack is environment-agnostic (region and account resolve at
// deploy time), so `cdk synth` needs no credentials and makes no lookups.
new SelfhealStack(app, "Selfheal", {
  stackName: typeof stackName === "string" && stackName !== "" ? stackName : "selfheal",
  description: "selfheal: serverless remediation (rollback, pause, resume, restart) of EKS Deployments",
  assetDir: contextPath("assetDir", path.join(repoRoot, "target", "lambda")),
  stateMachineDir: path.join(repoRoot, "statemachines"),
  dashboardFile: path.join(repoRoot, "deploy", "dashboard.json"),
});

app.synth();

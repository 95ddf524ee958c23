#!/usr/bin/env node
import * as cdk from "aws-cdk-lib";

import { WorkloadAccountStack } from "../lib/workload-account-stack";

// A separate app: the workload account needs neither the functions' build
// nor the state machines, only this role and access entry.
const app = new cdk.App();
const stackName: unknown = app.node.tryGetContext("stackName");

// No `env` (region and account resolve at deploy time) and no assets, so it
// needs no bootstrap: the synthesizer deploys with the caller's credentials.
new WorkloadAccountStack(app, "SelfhealWorkloadAccount", {
  stackName: typeof stackName === "string" && stackName !== "" ? stackName : "selfheal-workload",
  synthesizer: new cdk.BootstraplessSynthesizer(),
  analyticsReporting: false,
});

app.synth();

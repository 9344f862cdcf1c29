#!/usr/bin/env node
// End-to-end check of the Titan Image Gateway from Node, over grpc-js and over
// Connect-ES (gRPC protocol), both written from protos/ alone.
//
//   node e2e.mjs --target 127.0.0.1:50051 --key tgw_dev_key
//
// Prints one line per check and a summary line; exits 0 only if every check of
// both clients passed (1: a check failed, 2: bad arguments).

import { parseArgs } from "node:util";

import { runChecks } from "./lib/checks.mjs";
import { createConnectClient } from "./lib/connect-client.mjs";
import { createGrpcJsClient } from "./lib/grpcjs-client.mjs";

const CLIENTS = { "grpc-js": createGrpcJsClient, connect: createConnectClient };
const BAD_KEY = "tgw_not_a_key_the_gateway_knows";

function parseArguments() {
  try {
    const { values } = parseArgs({
      options: { target: { type: "string" }, key: { type: "string" } },
      strict: true,
    });
    if (!values.target || !values.key) throw new Error("--target and --key are required");
    return values;
  } catch (err) {
    console.error(`error: ${err.message}\nusage: node e2e.mjs --target HOST:PORT --key API_KEY`);
    process.exit(2);
  }
}

async function main() {
  const { target, key } = parseArguments();
  const results = [];
  for (const [name, createClient] of Object.entries(CLIENTS)) {
    const client = createClient(target, key);
    const badKeyClient = createClient(target, BAD_KEY);
    try {
      for (const { check, ok, detail } of await runChecks(client, badKeyClient)) {
        console.log(`${ok ? "PASS" : "FAIL"} ${name.padEnd(7)} ${check}: ${detail}`);
        results.push(ok);
      }
    } finally {
      client.close();
      badKeyClient.close();
    }
  }
  const failed = results.filter((ok) => !ok).length;
  const clients = Object.keys(CLIENTS).join(", ");
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed (${clients}) against ${target}`);
  process.exitCode = failed === 0 ? 0 : 1;
}

await main();

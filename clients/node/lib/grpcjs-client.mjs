// The gateway over @grpc/grpc-js, with the .proto files loaded at run time by
// @grpc/proto-loader: no generated code. google.rpc.Status and BadRequest
// (the grpc-status-details-bin trailer) are decoded with protobufjs, which
// proto-loader is built on, from the same vendored protos.

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

import { BAD_REQUEST_TYPE, RpcFailure, typeNameOf } from "./failure.mjs";
import {
  CALL_TIMEOUT_MS,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  PROTO_ROOT,
} from "./settings.mjs";

const SERVICE_FILES = [
  "titan/gateway/v1/image_service.proto",
  "titan/gateway/v1/usage_service.proto",
];
const STATUS_FILES = ["google/rpc/status.proto", "google/rpc/error_details.proto"];

// camelCase fields; int64 as decimal strings (money must not pass through a
// double); enums by name; `event` names the oneof case that is set.
const LOADER_OPTIONS = {
  includeDirs: [PROTO_ROOT],
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

const CHANNEL_OPTIONS = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  "grpc.keepalive_permit_without_calls": 0,
};

/** A client of `target` ("host:port", plaintext) sending `key` as bearer token. */
export function createGrpcJsClient(target, key) {
  const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(SERVICE_FILES, LOADER_OPTIONS));
  const v1 = loaded.titan.gateway.v1;
  const credentials = grpc.credentials.createInsecure();
  const images = new v1.ImageService(target, credentials, CHANNEL_OPTIONS);
  // A second stub on the same channel: one HTTP/2 connection for both services.
  const usage = new v1.UsageService(target, credentials, {
    ...CHANNEL_OPTIONS,
    channelOverride: images.getChannel(),
  });
  const statusTypes = loadStatusTypes();
  const callMetadata = () => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${key}`);
    return metadata;
  };
  const deadline = () => new Date(Date.now() + CALL_TIMEOUT_MS);

  return {
    name: "grpc-js",
    generate: (spec) =>
      collect(images.GenerateImages(toRequest(spec), callMetadata(), { deadline: deadline() }))
        .catch((err) => {
          throw toFailure(err, statusTypes);
        }),
    daySpentMicros: async () => {
      const reply = await new Promise((resolve, reject) => {
        usage.GetUsage({}, callMetadata(), { deadline: deadline() }, (err, response) =>
          err ? reject(toFailure(err, statusTypes)) : resolve(response),
        );
      });
      return daySpent(reply);
    },
    close: () => images.close(),
  };
}

/** The request of a check's spec, in proto-loader's plain-object form. */
function toRequest({ prompt, count, width, height }) {
  return {
    textToImage: { text: prompt },
    config: { numberOfImages: count, width, height },
  };
}

/** Every event of a GenerateImages stream as `{kind, ...fields}`. */
function collect(call) {
  return new Promise((resolve, reject) => {
    const events = [];
    call.on("data", (response) => events.push({ kind: response.event, ...response[response.event] }));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

function daySpent(reply) {
  const day = reply.budgets.find((b) => b.period === "BUDGET_PERIOD_DAY");
  if (!day) throw new Error("GetUsage reported no DAY budget");
  return BigInt(day.spentMicros);
}

function loadStatusTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_ROOT + target;
  // keepCase: protobufjs's built-in google.protobuf.Any says `type_url`
  // whatever the option, so the status types keep the protos' names too.
  root.loadSync(STATUS_FILES, { keepCase: true });
  return {
    Status: root.lookupType("google.rpc.Status"),
    BadRequest: root.lookupType(BAD_REQUEST_TYPE),
  };
}

/** A grpc-js ServiceError as an RpcFailure, its status details decoded. */
function toFailure(err, { Status, BadRequest }) {
  if (typeof err?.code !== "number" || !err.metadata) return err;
  const [bin] = err.metadata.get("grpc-status-details-bin");
  const status = bin ? Status.decode(bin) : null;
  const details = status?.details ?? [];
  const violations = details
    .filter((any) => typeNameOf(any.type_url) === BAD_REQUEST_TYPE)
    .flatMap((any) => BadRequest.decode(any.value).field_violations)
    .map(({ field, description }) => ({ field, description }));
  return new RpcFailure(
    {
      code: err.code,
      message: err.details,
      status: status && {
        code: status.code,
        message: status.message,
        detailTypes: details.map((any) => typeNameOf(any.type_url)),
      },
      violations,
    },
    err,
  );
}

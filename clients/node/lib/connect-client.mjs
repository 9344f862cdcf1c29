// The gateway over Connect-ES v2, speaking gRPC (createGrpcTransport), with
// the messages and service descriptors protoc-gen-es generated into gen/
// (`npm run generate`). The google.rpc types are generated from the vendored
// protos too; the grpc-status-details-bin trailer is decoded here by hand
// (ConnectError.findDetails would do it for us; doing it explicitly shows what
// is on the wire and checks the trailer really is there).

import { create } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient, decodeBinaryHeader } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadRequestSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { GenerateImagesRequestSchema, ImageService } from "../gen/titan/gateway/v1/image_service_pb.js";
import { BudgetPeriod, UsageService } from "../gen/titan/gateway/v1/usage_service_pb.js";
import { RpcFailure, typeNameOf } from "./failure.mjs";
import {
  CALL_TIMEOUT_MS,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
} from "./settings.mjs";

/** A client of `target` ("host:port", plaintext) sending `key` as bearer token. */
export function createConnectClient(target, key) {
  const transport = createGrpcTransport({
    baseUrl: `http://${target}`,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    pingIntervalMs: KEEPALIVE_TIME_MS,
    pingTimeoutMs: KEEPALIVE_TIMEOUT_MS,
    pingIdleConnection: false,
    interceptors: [
      (next) => (request) => {
        request.header.set("authorization", `Bearer ${key}`);
        return next(request);
      },
    ],
  });
  const images = createClient(ImageService, transport);
  const usage = createClient(UsageService, transport);
  const options = () => ({ timeoutMs: CALL_TIMEOUT_MS });

  return {
    name: "connect",
    generate: (spec) => collect(images.generateImages(toRequest(spec), options())),
    daySpentMicros: async () => {
      const reply = await usage.getUsage({}, options()).catch(rethrowAsFailure);
      const day = reply.budgets.find((b) => b.period === BudgetPeriod.DAY);
      if (!day) throw new Error("GetUsage reported no DAY budget");
      return day.spentMicros;
    },
    close: () => {},
  };
}

function toRequest({ prompt, count, width, height }) {
  return create(GenerateImagesRequestSchema, {
    task: { case: "textToImage", value: { text: prompt } },
    config: { numberOfImages: count, width, height },
  });
}

/** Every event of a GenerateImages stream as `{kind, ...fields}`. */
async function collect(stream) {
  const events = [];
  try {
    for await (const response of stream) {
      events.push({ kind: response.event.case, ...response.event.value });
    }
  } catch (err) {
    rethrowAsFailure(err);
  }
  return events;
}

/** Throw a ConnectError as an RpcFailure, its status details decoded. */
function rethrowAsFailure(err) {
  if (!(err instanceof ConnectError)) throw err;
  const bin = err.metadata.get("grpc-status-details-bin");
  const status = bin ? decodeBinaryHeader(bin, StatusSchema) : null;
  const details = status?.details ?? [];
  const violations = details
    .map((any) => anyUnpack(any, BadRequestSchema))
    .filter(Boolean)
    .flatMap((badRequest) => badRequest.fieldViolations)
    .map(({ field, description }) => ({ field, description }));
  throw new RpcFailure(
    {
      code: err.code,
      message: err.rawMessage,
      status: status && {
        code: status.code,
        message: status.message,
        detailTypes: details.map((any) => typeNameOf(any.typeUrl)),
      },
      violations,
    },
    err,
  );
}

// Client-side settings both clients use, in one place, with the reason for each.

import { fileURLToPath } from "node:url";

// The gateway sends messages of up to 40 MiB (gateway/server.py
// MAX_MESSAGE_BYTES): one Image event carries a whole encoded image, about
// 2 MB for a 1024x1024 PNG from Bedrock and far more for an upscale to
// ~4 MP or a 4x Fast Upscale. grpc-js refuses any message over 4 MiB unless
// told otherwise (RESOURCE_EXHAUSTED "Received message larger than max"),
// so the limit is raised to what the gateway may send. Connect-ES's default
// is ~4 GiB; it gets the same 40 MiB so both clients behave alike.
export const MAX_MESSAGE_BYTES = 40 * 1024 * 1024;

// HTTP/2 keepalive. The gateway (grpc.aio, gRPC core defaults) accepts a
// client PING at most every 5 minutes while it sends no data and answers
// more frequent ones with GOAWAY "too_many_pings" after repeated strikes, which
// kills every call on the connection (grpc-js with a 1 s keepalive: a slow
// GenerateImages fails after ~4 s with RESOURCE_EXHAUSTED "Bandwidth
// exhausted or memory limit exceeded"). So: ping every 6 minutes (gRPC core
// allows no grace: a ping a few ms inside 5 minutes is a strike), and only
// while a call is open (no pings on idle connections).
export const KEEPALIVE_TIME_MS = 6 * 60 * 1000;
export const KEEPALIVE_TIMEOUT_MS = 20 * 1000;

// Every call carries a deadline; the gateway passes it on to its backend calls.
export const CALL_TIMEOUT_MS = 30 * 1000;

// The first eight bytes of every PNG file.
export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

// gRPC status codes the checks expect (the same numbers in grpc-js and Connect).
export const INVALID_ARGUMENT = 3;
export const UNAUTHENTICATED = 16;

// The protos' import root, relative to this file: clients/node/lib -> protos/.
export const PROTO_ROOT = fileURLToPath(new URL("../../../protos/", import.meta.url));

// The end-to-end checks, written once against the small client interface both
// lib/grpcjs-client.mjs and lib/connect-client.mjs implement:
//
//   name                  "grpc-js" or "connect"
//   generate(spec)        GenerateImages: every event as {kind, ...fields}, kind the
//                         oneof case ("accepted", "image", "imageFailed", "completed");
//                         rejects with an RpcFailure (lib/failure.mjs)
//   daySpentMicros()      UsageService.GetUsage: the DAY budget's spent_micros (bigint)
//   close()
//
// int64 fields arrive as bigint (Connect) or decimal strings (grpc-js); the
// checks read money through BigInt(), never through a JavaScript number.

import { RpcFailure } from "./failure.mjs";
import { INVALID_ARGUMENT, PNG_SIGNATURE, UNAUTHENTICATED } from "./settings.mjs";

const PROMPT = "a red fox in snow, studio light";

/**
 * Run every check with `client` (and `badKeyClient`, the same target with a key
 * the gateway does not know). One result per check: {check, ok, detail}.
 */
export async function runChecks(client, badKeyClient) {
  const results = [];
  const run = async (check, fn) => {
    try {
      results.push({ check, ok: true, detail: await fn() });
    } catch (err) {
      results.push({ check, ok: false, detail: err?.message ?? String(err) });
    }
  };
  let completedCost = null;
  let spentBefore = null;
  await run("usage before", async () => {
    spentBefore = await client.daySpentMicros();
    return `DAY spent ${spentBefore} µUSD`;
  });
  await run("stream", async () => {
    const outcome = checkStream(await client.generate({ prompt: PROMPT, count: 2 }), 2);
    completedCost = outcome.cost;
    return outcome.summary;
  });
  await run("usage delta", async () => {
    if (completedCost === null || spentBefore === null) throw new Error("needs the two checks above");
    const delta = (await client.daySpentMicros()) - spentBefore;
    expect(delta === completedCost, `DAY spent rose by ${delta}, Completed.cost_micros is ${completedCost}`);
    return `DAY spent +${delta} µUSD = Completed.cost_micros`;
  });
  await run("invalid argument", () => checkInvalid(client));
  await run("bad key", () => checkBadKey(badKeyClient));
  return results;
}

/** Accepted, `count` PNG images, Completed whose cost is the images' sum. */
function checkStream(events, count) {
  const kinds = events.map((e) => e.kind);
  expect(kinds[0] === "accepted", `first event is ${kinds[0]}, not accepted`);
  expect(kinds.at(-1) === "completed", `last event is ${kinds.at(-1)}, not completed`);
  const [accepted, completed] = [events[0], events.at(-1)];
  const images = events.filter((e) => e.kind === "image");
  expect(events.length === count + 2, `events: ${kinds.join(", ")}`);
  expect(images.length === count, `${images.length} images, expected ${count}: ${kinds.join(", ")}`);
  expect(accepted.imageCount === count, `Accepted.image_count ${accepted.imageCount}`);
  const indexes = images.map((i) => i.index).sort();
  expect(indexes.join() === [...Array(count).keys()].join(), `image indexes ${indexes}`);
  for (const image of images) {
    expect(image.mimeType === "image/png", `image ${image.index}: mime type ${image.mimeType}`);
    expect(isPng(image.data), `image ${image.index}: ${image.data.length} bytes without the PNG signature`);
  }
  const sum = images.reduce((total, i) => total + BigInt(i.costMicros), 0n);
  const cost = BigInt(completed.costMicros);
  expect(completed.imagesDelivered === count, `Completed.images_delivered ${completed.imagesDelivered}`);
  expect(completed.imagesFailed === 0, `Completed.images_failed ${completed.imagesFailed}`);
  expect(cost > 0n, `Completed.cost_micros ${cost}`);
  expect(cost === sum, `Completed.cost_micros ${cost} != sum of Image.cost_micros ${sum}`);
  const sizes = images.map((i) => `${i.width}x${i.height} ${i.data.length} B`).join(", ");
  return { cost, summary: `${count} PNGs from ${accepted.modelId} (${sizes}), cost ${cost} µUSD` };
}

/** width 17: INVALID_ARGUMENT whose trailer carries a google.rpc.BadRequest. */
async function checkInvalid(client) {
  const failure = await expectFailure(client.generate({ prompt: PROMPT, count: 1, width: 17, height: 17 }));
  expect(failure.code === INVALID_ARGUMENT, `status ${failure.code} (${failure.statusMessage})`);
  expect(failure.status !== null, "no grpc-status-details-bin trailer");
  expect(failure.status.code === INVALID_ARGUMENT, `google.rpc.Status.code ${failure.status.code}`);
  const width = failure.violations.find((v) => v.field === "config.width");
  expect(width, `no BadRequest violation of config.width among [${failure.status.detailTypes}]`);
  return `INVALID_ARGUMENT, BadRequest ${width.field}: ${width.description}`;
}

async function checkBadKey(badKeyClient) {
  const failure = await expectFailure(badKeyClient.generate({ prompt: PROMPT, count: 1 }));
  expect(failure.code === UNAUTHENTICATED, `status ${failure.code} (${failure.statusMessage})`);
  return `UNAUTHENTICATED (${failure.statusMessage})`;
}

async function expectFailure(call) {
  try {
    await call;
  } catch (err) {
    if (err instanceof RpcFailure) return err;
    throw err;
  }
  throw new Error("the call succeeded");
}

function isPng(data) {
  return data.length > PNG_SIGNATURE.length && PNG_SIGNATURE.every((byte, i) => data[i] === byte);
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

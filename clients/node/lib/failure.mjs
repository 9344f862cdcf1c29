// RpcFailure: how both clients report a call that ended with a non-OK status,
// so the checks never import grpc-js or Connect to read an error.

export class RpcFailure extends Error {
  /**
   * @param {object} fields
   * @param {number} fields.code gRPC status code (3 = INVALID_ARGUMENT, 16 = UNAUTHENTICATED)
   * @param {string} fields.message the status message
   * @param {{code: number, message: string, detailTypes: string[]} | null} fields.status
   *   the google.rpc.Status decoded from the grpc-status-details-bin trailer (null: no trailer)
   * @param {{field: string, description: string}[]} fields.violations
   *   the google.rpc.BadRequest field violations among its details
   * @param {unknown} cause the client library's own error
   */
  constructor({ code, message, status, violations }, cause) {
    super(`gRPC status ${code}: ${message}`, { cause });
    this.name = "RpcFailure";
    this.code = code;
    this.statusMessage = message;
    this.status = status;
    this.violations = violations;
  }
}

export const BAD_REQUEST_TYPE = "google.rpc.BadRequest";

/** The message type name of a google.protobuf.Any type URL. */
export function typeNameOf(typeUrl) {
  return typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}

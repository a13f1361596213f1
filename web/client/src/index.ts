// @helpline/client: the messages and service descriptors generated from
// Helpline's public protos, and clients for them through the web gateway.
export * from "./helpline/identity/v1/identity_pb.js";
export * from "./helpline/catalog/v1/catalog_pb.js";
export * from "./helpline/matching/v1/matching_pb.js";
export * from "./helpline/sessions/v1/sessions_pb.js";
export * from "./helpline/payments/v1/payments_pb.js";
export * from "./helpline/payments/v1/ledger_pb.js";
export * from "./helpline/runtime/v1/envelope_pb.js";
export * from "./google/rpc/error_details_pb.js";

export * from "./clients.js";
export * from "./errors.js";

// So an app needs no import of the runtime packages for the everyday things.
export { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
export { durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

// One client per Helpline service, all through the web gateway on one
// transport that signs every call with the caller's access token.
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

import { CatalogService } from "./helpline/catalog/v1/catalog_pb.js";
import { IdentityService } from "./helpline/identity/v1/identity_pb.js";
import { MatchingService } from "./helpline/matching/v1/matching_pb.js";
import { PaymentsService } from "./helpline/payments/v1/payments_pb.js";
import { SessionsService } from "./helpline/sessions/v1/sessions_pb.js";

/** The gateway speaks both; "connect" is the default. */
export type Protocol = "connect" | "grpc-web";

/** The access token to send, or nothing for the public calls (Login, Register, Refresh). */
export type TokenSource = () => string | undefined | Promise<string | undefined>;

export interface HelplineClientOptions {
  protocol?: Protocol;
  /** Asked before every call, so a refreshed token is used at once. */
  token?: TokenSource;
  /**
   * Deadline of calls that set no `timeoutMs` of their own. Long-lived
   * streams (WatchRequest, WatchOffers) should pass `timeoutMs: 0` (none).
   */
  defaultTimeoutMs?: number;
  /**
   * Connect only: protobuf binary instead of JSON on the wire. gRPC-Web is
   * always binary.
   */
  useBinaryFormat?: boolean;
  /** Your own interceptors, in connect-es order; they see the request after the token is set. */
  interceptors?: Interceptor[];
  /** To set fetch options such as `credentials`. */
  fetch?: typeof globalThis.fetch;
}

export interface HelplineClients {
  transport: Transport;
  identity: Client<typeof IdentityService>;
  catalog: Client<typeof CatalogService>;
  matching: Client<typeof MatchingService>;
  sessions: Client<typeof SessionsService>;
  payments: Client<typeof PaymentsService>;
}

/** Adds `authorization: Bearer <token>` when the source has a token. */
export function bearerToken(token: TokenSource): Interceptor {
  return (next) => async (request) => {
    const value = await token();
    if (value) request.header.set("authorization", `Bearer ${value}`);
    return next(request);
  };
}

/** A transport to the gateway at `baseUrl` (such as "http://127.0.0.1:8080"). */
export function createHelplineTransport(
  baseUrl: string,
  options: HelplineClientOptions = {},
): Transport {
  const interceptors = [...(options.interceptors ?? [])];
  if (options.token) interceptors.unshift(bearerToken(options.token));
  const common = {
    baseUrl,
    interceptors,
    defaultTimeoutMs: options.defaultTimeoutMs,
    fetch: options.fetch,
  };
  const protocol = options.protocol ?? "connect";
  switch (protocol) {
    case "connect":
      return createConnectTransport({ ...common, useBinaryFormat: options.useBinaryFormat });
    case "grpc-web":
      return createGrpcWebTransport(common);
    default:
      throw new Error(`unknown protocol ${String(protocol)}: use "connect" or "grpc-web"`);
  }
}

/** Clients of the five services, sharing one transport. */
export function createHelplineClients(
  baseUrl: string,
  options: HelplineClientOptions = {},
): HelplineClients {
  const transport = createHelplineTransport(baseUrl, options);
  return {
    transport,
    identity: createClient(IdentityService, transport),
    catalog: createClient(CatalogService, transport),
    matching: createClient(MatchingService, transport),
    sessions: createClient(SessionsService, transport),
    payments: createClient(PaymentsService, transport),
  };
}

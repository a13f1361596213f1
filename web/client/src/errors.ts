// Helpline reports invalid requests as INVALID_ARGUMENT with a
// google.rpc.BadRequest detail naming each bad field by its proto path
// ("description", "budget.max_per_minute.amount_minor").
import { ConnectError } from "@connectrpc/connect";

import { BadRequestSchema } from "./google/rpc/error_details_pb.js";

/**
 * The field violations of a failed call, as {proto field path: description};
 * empty when the error carries none (or is not a ConnectError). Several
 * violations of one field are joined with "; ".
 */
export function fieldViolations(error: unknown): Record<string, string> {
  const violations: Record<string, string> = {};
  if (!(error instanceof ConnectError)) return violations;
  for (const badRequest of error.findDetails(BadRequestSchema)) {
    for (const { field, description } of badRequest.fieldViolations) {
      violations[field] = violations[field] ? `${violations[field]}; ${description}` : description;
    }
  }
  return violations;
}

#pragma once

#include <string>
#include <string_view>

#include "services/runtime/core/errors.h"

// Checks on text that clients send, shared by every service's validation.
namespace helpline::text {

// Code points in `text`; -1 if it is not UTF-8 or holds a control character
// (newlines and tabs count as control characters unless `multiline`), a bidi
// override, embedding or isolate, or (unless `multiline`) a zero-width space
// or another character invisible in one line.
int Utf8Length(std::string_view text, bool multiline = false);

// Whether `text` shows anything: not only spaces, blank fillers and joiners.
bool Visible(std::string_view text);

// min_length to max_length code points of UTF-8, not only blanks, no control
// characters (but newlines and tabs when `multiline`).
void CheckText(std::string_view text, int min_length, int max_length, const std::string& field,
               errors::Validator& validator, bool multiline = false);

// 1 to 128 printable ASCII characters: a client's idempotency key.
void CheckRequestId(std::string_view request_id, const std::string& field,
                    errors::Validator& validator);

}  // namespace helpline::text

#pragma once

#include <string>
#include <string_view>
#include <vector>

// How search sees text: lower case, accents dropped, split at anything that
// is not a letter or digit. German umlauts fold to "ae", "oe", "ue" (and ß to
// "ss"), the way Germans type them without the keys; indexed text also
// carries the plain-vowel form, so "Müller" is found by "müller", "mueller"
// and "muller".
namespace helpline::catalog {

// Every searchable form of the words of `text`, in order (a word with an
// umlaut gives two tokens). Tokens are at most kMaxTokenBytes long.
std::vector<std::string> IndexTokens(std::string_view text);

// One token per word of a query.
std::vector<std::string> QueryTokens(std::string_view text);

inline constexpr size_t kMaxTokenBytes = 40;

}  // namespace helpline::catalog

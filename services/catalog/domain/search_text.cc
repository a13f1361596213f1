#include "services/catalog/domain/search_text.h"

#include <cstdint>
#include <cstring>

namespace helpline::catalog {
namespace {

// The next code point of `text` from `i` (advancing it); U+FFFD for bytes
// that are not UTF-8.
char32_t NextCodePoint(std::string_view text, size_t& i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  size_t extra = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                            : (c & 0xf8) == 0xf0   ? 3
                                                   : 99;
  if (extra == 99 || i + extra >= text.size() + (extra == 0 ? 1 : 0)) {
    ++i;
    return 0xfffd;
  }
  char32_t code = extra == 0 ? c : c & (0x3f >> extra);
  for (size_t k = 1; k <= extra; ++k) {
    unsigned char next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xc0) != 0x80) {
      ++i;
      return 0xfffd;
    }
    code = (code << 6) | (next & 0x3f);
  }
  i += extra + 1;
  return code;
}

void AppendUtf8(char32_t code, std::string& out) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xc0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xe0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

// What a code point becomes: `folded` in the umlaut-as-digraph form, `plain`
// in the plain-vowel form (same unless it is an umlaut). Empty: a separator.
struct Folding {
  const char* folded;
  const char* plain;
};

Folding Fold(char32_t code, std::string& scratch) {
  if (code < 0x80) {
    static char ascii[128][2];
    static bool init = [] {
      for (int c = 0; c < 128; ++c) {
        bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool upper = c >= 'A' && c <= 'Z';
        ascii[c][0] = word ? static_cast<char>(c) : upper ? static_cast<char>(c + 32) : '\0';
        ascii[c][1] = '\0';
      }
      return true;
    }();
    (void)init;
    return {ascii[code], ascii[code]};
  }
  switch (code) {
    case U'Ä': case U'ä': return {"ae", "a"};
    case U'Ö': case U'ö': return {"oe", "o"};
    case U'Ü': case U'ü': return {"ue", "u"};
    case U'ß': case U'ẞ': return {"ss", "ss"};
    case U'Æ': case U'æ': return {"ae", "ae"};
    case U'Œ': case U'œ': return {"oe", "oe"};
    case U'À': case U'Á': case U'Â': case U'Ã': case U'Å': case U'à': case U'á': case U'â':
    case U'ã': case U'å': case U'Ā': case U'ā': case U'Ą': case U'ą': return {"a", "a"};
    case U'Ç': case U'ç': case U'Ć': case U'ć': case U'Č': case U'č': return {"c", "c"};
    case U'È': case U'É': case U'Ê': case U'Ë': case U'è': case U'é': case U'ê': case U'ë':
    case U'Ē': case U'ē': case U'Ę': case U'ę': case U'Ě': case U'ě': return {"e", "e"};
    case U'Ì': case U'Í': case U'Î': case U'Ï': case U'ì': case U'í': case U'î': case U'ï':
    case U'ı': return {"i", "i"};
    case U'Ñ': case U'ñ': case U'Ń': case U'ń': case U'Ň': case U'ň': return {"n", "n"};
    case U'Ò': case U'Ó': case U'Ô': case U'Õ': case U'Ø': case U'ò': case U'ó': case U'ô':
    case U'õ': case U'ø': case U'Ő': case U'ő': return {"o", "o"};
    case U'Ù': case U'Ú': case U'Û': case U'ù': case U'ú': case U'û': case U'Ů': case U'ů':
    case U'Ű': case U'ű': return {"u", "u"};
    case U'Ý': case U'ý': case U'ÿ': return {"y", "y"};
    case U'Ł': case U'ł': return {"l", "l"};
    case U'Š': case U'š': case U'Ś': case U'ś': return {"s", "s"};
    case U'Ž': case U'ž': case U'Ź': case U'ź': case U'Ż': case U'ż': return {"z", "z"};
    case U'Ř': case U'ř': return {"r", "r"};
    case U'Ď': case U'ď': return {"d", "d"};
    case U'Ť': case U'ť': return {"t", "t"};
    default:
      break;
  }
  // General punctuation, symbols, spaces: separators. Other scripts: letters.
  bool separator = code <= 0xbf || code == 0xd7 || code == 0xf7 ||
                   (code >= 0x2000 && code <= 0x2bff) || (code >= 0x3000 && code <= 0x303f) ||
                   code == 0xfeff || code == 0xfffd;
  if (separator) return {"", ""};
  scratch.clear();
  AppendUtf8(code, scratch);
  return {scratch.c_str(), scratch.c_str()};
}

void Tokenise(std::string_view text, bool with_plain_forms, std::vector<std::string>& out) {
  std::string folded;
  std::string plain;
  bool differs = false;
  std::string scratch;
  auto flush = [&] {
    if (!folded.empty()) {
      if (folded.size() > kMaxTokenBytes) folded.resize(kMaxTokenBytes);
      out.push_back(folded);
      if (differs && with_plain_forms) {
        if (plain.size() > kMaxTokenBytes) plain.resize(kMaxTokenBytes);
        out.push_back(plain);
      }
    }
    folded.clear();
    plain.clear();
    differs = false;
  };
  size_t i = 0;
  while (i < text.size()) {
    Folding folding = Fold(NextCodePoint(text, i), scratch);
    if (*folding.folded == '\0') {
      flush();
      continue;
    }
    folded += folding.folded;
    plain += folding.plain;
    differs = differs || std::strcmp(folding.folded, folding.plain) != 0;
  }
  flush();
}

}  // namespace

std::vector<std::string> IndexTokens(std::string_view text) {
  std::vector<std::string> tokens;
  Tokenise(text, /*with_plain_forms=*/true, tokens);
  return tokens;
}

std::vector<std::string> QueryTokens(std::string_view text) {
  std::vector<std::string> tokens;
  Tokenise(text, /*with_plain_forms=*/false, tokens);
  return tokens;
}

}  // namespace helpline::catalog

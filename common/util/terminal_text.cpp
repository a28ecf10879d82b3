#include "common/util/terminal_text.h"

#include <cstdint>

namespace procsnap {

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF), or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view text, size_t i, uint32_t& code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const auto continuation = [&](size_t k) {
    return i + k < text.size() && (byte(k) & 0xc0) == 0x80;
  };
  const unsigned char lead = byte(0);
  if (lead >= 0xc2 && lead <= 0xdf && continuation(1)) {
    code_point = (lead & 0x1fu) << 6 | (byte(1) & 0x3fu);
    return 2;
  }
  if (lead >= 0xe0 && lead <= 0xef && continuation(1) && continuation(2)) {
    code_point = (lead & 0x0fu) << 12 | (byte(1) & 0x3fu) << 6 | (byte(2) & 0x3fu);
    if (code_point < 0x800 || (code_point >= 0xd800 && code_point <= 0xdfff))
      return 0;
    return 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4 && continuation(1) && continuation(2) && continuation(3)) {
    code_point =
        (lead & 0x07u) << 18 | (byte(1) & 0x3fu) << 12 | (byte(2) & 0x3fu) << 6 | (byte(3) & 0x3fu);
    if (code_point < 0x10000 || code_point > 0x10ffff)
      return 0;
    return 4;
  }
  return 0;
}

// C1 controls act on terminals like ESC sequences; bidi overrides reorder what is shown.
bool unsafeCodePoint(uint32_t code_point) {
  return (code_point >= 0x80 && code_point <= 0x9f) ||
         (code_point >= 0x202a && code_point <= 0x202e) ||
         (code_point >= 0x2066 && code_point <= 0x2069);
}

void appendByteEscape(std::string& out, unsigned char byte) {
  static constexpr char kDigits[] = "0123456789abcdef";
  switch (byte) {
  case '\n':
    out += "\\n";
    return;
  case '\r':
    out += "\\r";
    return;
  default:
    out += "\\x";
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
  }
}

// Printable ASCII and tab.
bool passes(unsigned char byte) {
  return (byte >= 0x20 && byte < 0x7f) || byte == '\t';
}

// Walks text calling emit(piece, escape) for runs that pass and for units that need escaping.
template <typename Emit> void walk(std::string_view text, Emit emit) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (passes(byte)) {
      size_t end = i + 1;
      while (end < text.size() && passes(static_cast<unsigned char>(text[end])))
        ++end;
      if (!emit(text.substr(i, end - i), false))
        return;
      i = end;
      continue;
    }
    uint32_t code_point = 0;
    const size_t length = byte >= 0x80 ? utf8SequenceLength(text, i, code_point) : 0;
    if (length == 0) {
      if (!emit(text.substr(i, 1), true))
        return;
      i += 1;
      continue;
    }
    if (!emit(text.substr(i, length), unsafeCodePoint(code_point)))
      return;
    i += length;
  }
}

} // namespace

bool needsTerminalEscape(std::string_view text) {
  bool needed = false;
  walk(text, [&](std::string_view, bool escape) {
    needed = escape;
    return !escape;
  });
  return needed;
}

std::string escapeForTerminal(std::string_view text) {
  if (!needsTerminalEscape(text))
    return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  walk(text, [&](std::string_view piece, bool escape) {
    if (!escape) {
      out += piece;
      return true;
    }
    for (char c : piece)
      appendByteEscape(out, static_cast<unsigned char>(c));
    return true;
  });
  return out;
}

} // namespace procsnap

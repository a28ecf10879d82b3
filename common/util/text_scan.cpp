#include "common/util/text_scan.h"

#include <cstdio>
#include <cstring>

namespace procsnap {

namespace {

// Longest piece of offending input quoted in an error message: enough to recognise a maps
// or smaps line, short enough to keep the message on one readable line.
constexpr size_t kMaxQuotedLength = 160;

} // namespace

std::string hexString(uint64_t value) {
  char buffer[24];
  int length =
      std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return std::string(buffer, static_cast<size_t>(length));
}

std::string quoteForError(std::string_view text) {
  bool cut = text.size() > kMaxQuotedLength;
  if (cut)
    text = text.substr(0, kMaxQuotedLength);
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  out += cut ? "\"..." : "\"";
  return out;
}

std::string errnoText(int error_number) {
  std::string text = std::strerror(error_number);
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z')
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

std::string_view trimBlanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

} // namespace procsnap

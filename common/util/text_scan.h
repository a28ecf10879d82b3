// Small helpers for the /proc text parsers: a cursor over one line, a line splitter that
// counts lines, and the formatting of values inside error messages.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace procsnap {

// A cursor over a line. Number readers return nullopt on no digits or overflow and then
// leave the cursor where it was.
class TextScanner final {
public:
  explicit TextScanner(std::string_view text) : text_(text) {}

  bool done() const { return pos_ >= text_.size(); }
  std::string_view rest() const { return text_.substr(pos_); }

  bool consume(char c) {
    if (done() || text_[pos_] != c)
      return false;
    ++pos_;
    return true;
  }
  void skipSpaces() {
    while (!done() && (text_[pos_] == ' ' || text_[pos_] == '\t'))
      ++pos_;
  }
  // Up to count characters.
  std::string_view take(size_t count) {
    std::string_view out = text_.substr(pos_, count);
    pos_ += out.size();
    return out;
  }
  std::optional<uint64_t> hex64() { return number(16); }
  std::optional<uint64_t> dec64() { return number(10); }

private:
  std::optional<uint64_t> number(int base) {
    uint64_t value = 0;
    const char* first = text_.data() + pos_;
    const char* last = text_.data() + text_.size();
    auto [ptr, ec] = std::from_chars(first, last, value, base);
    if (ec != std::errc() || ptr == first)
      return std::nullopt;
    pos_ += static_cast<size_t>(ptr - first);
    return value;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Splits text into lines without their '\n'; a final '\n' does not start an empty line.
class LineReader final {
public:
  explicit LineReader(std::string_view text) : text_(text) {}

  std::optional<std::string_view> next() {
    if (pos_ >= text_.size())
      return std::nullopt;
    size_t newline = text_.find('\n', pos_);
    size_t stop = newline == std::string_view::npos ? text_.size() : newline;
    std::string_view line = text_.substr(pos_, stop - pos_);
    pos_ = newline == std::string_view::npos ? text_.size() : newline + 1;
    ++line_number_;
    return line;
  }
  // 1-based number of the line next() returned last.
  size_t lineNumber() const { return line_number_; }

private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t line_number_ = 0;
};

// "0x1f" for error messages and logs.
std::string hexString(uint64_t value);

// Text quoted for a one-line error message: control characters escaped, long text cut.
std::string quoteForError(std::string_view text);

// strerror(error_number) starting in lowercase, for "cannot open X: no such file or directory".
std::string errnoText(int error_number);

// Trims spaces and tabs at both ends.
std::string_view trimBlanks(std::string_view text);

} // namespace procsnap

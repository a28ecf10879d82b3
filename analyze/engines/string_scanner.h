// Finds printable strings in memory exactly as GNU `strings -a` finds them in a file holding
// the same bytes (binutils 2.40, strings.c print_strings):
// - a character is "graphic" when it is ASCII 0x20..0x7e or TAB; newline, CR and bytes above
//   0x7e are not (so `-e s`, the 7-bit default);
// - with `-e l` a character is two bytes, little-endian, and graphic when its high byte is 0
//   and its low byte is graphic by the rule above; after a non-graphic character GNU steps back
//   one byte, so strings are found at odd and even offsets alike;
// - a string is a maximal run of at least min_length graphic characters, reported at the
//   offset of its first byte.
// The scanner is a stream: bytes arrive in blocks at increasing offsets, and the space between
// two blocks counts as zero bytes (unstored memory reads as zeros), so scanning only the stored
// extents of a region finds what GNU strings finds on the whole region dumped with zeros.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace procsnap::analyze {

enum class StringEncoding {
  Ascii7,  // GNU strings -e s (the default)
  Utf16Le, // GNU strings -e l
};

// "s" / "l", the letters GNU strings takes after -e.
std::optional<StringEncoding> stringEncodingFromLetter(std::string_view letter);
std::string_view toLetter(StringEncoding encoding);

// Longest string text a hit carries. GNU strings prints a string of any length; a region
// holding one gigabyte of 'A' would then need a gigabyte of memory here. Longer strings keep
// their full length and start offset and say truncated.
inline constexpr size_t kMaxStringTextBytes = size_t{1} << 20;

// Largest accepted -n: GNU accepts more, but nothing real is longer and the check catches
// typos such as -n 1000000000.
inline constexpr size_t kMaxMinStringLength = size_t{1} << 16;

struct FoundString {
  uint64_t offset = 0;    // of the first byte, in the caller's coordinates (address or offset)
  uint64_t length = 0;    // in characters (UTF-16LE: two bytes each)
  std::string text;       // the characters, the low byte of each for UTF-16LE
  bool truncated = false; // text holds only the first kMaxStringTextBytes characters

  uint64_t byteLength(StringEncoding encoding) const {
    return encoding == StringEncoding::Utf16Le ? length * 2 : length;
  }
};

namespace internal {
// GNU's STRING_ISGRAPHIC for -e s: printable ASCII and TAB.
constexpr std::array<bool, 256> makeGraphicTable() {
  std::array<bool, 256> table{};
  for (int byte = 0x20; byte <= 0x7e; ++byte)
    table[static_cast<size_t>(byte)] = true;
  table['\t'] = true;
  return table;
}
} // namespace internal

inline constexpr std::array<bool, 256> kGraphicBytes = internal::makeGraphicTable();

class StringScanner final {
public:
  using Sink = std::function<void(const FoundString&)>;

  // min_length must be at least 1 (callers validate user input against kMaxMinStringLength).
  StringScanner(StringEncoding encoding, size_t min_length, Sink sink);
  StringScanner(const StringScanner&) = delete;
  StringScanner& operator=(const StringScanner&) = delete;

  // Starts an independent stream at offset (a region's start): what was pending is finished
  // first, and no string runs from the previous stream into this one.
  void begin(uint64_t offset);
  // Scans bytes placed at offset. offset must not be below the end of the previous block;
  // the bytes in between are zeros. Blocks may be split anywhere.
  void feed(uint64_t offset, std::span<const uint8_t> bytes);
  // Ends the stream: reports the string still open, if any.
  void finish();

  static bool isGraphic(uint8_t byte) { return kGraphicBytes[byte]; }

private:
  void skipZeros(uint64_t count);
  void feedAscii(uint64_t offset, const uint8_t* data, size_t size);
  void feedUtf16(uint64_t offset, const uint8_t* data, size_t size);
  void startRun(uint64_t offset);
  void appendToRun(const uint8_t* data, size_t size);
  void appendCharToRun(uint8_t character);
  void endRun();

  StringEncoding encoding_;
  size_t min_length_;
  Sink sink_;

  uint64_t cursor_ = 0; // offset of the next byte expected
  bool run_open_ = false;
  FoundString run_;
  // UTF-16LE: the byte before cursor_ (0 at a stream start: it then forms no character), and
  // the offset of the open run's last character.
  uint8_t previous_byte_ = 0;
  uint64_t run_last_char_ = 0;
};

} // namespace procsnap::analyze

#include "analyze/engines/string_scanner.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace procsnap::analyze {

namespace {

constexpr uint64_t kByteOnes = 0x0101010101010101ull;
constexpr uint64_t kByteHighBits = 0x8080808080808080ull;

// True when all eight bytes of word are 0x20..0x7e, with two carry tricks (Bit Twiddling
// Hacks, "hasless"/"hasmore"); both are exact as existence tests. TAB fails it and is then
// taken byte by byte, so the result never differs from the table.
inline bool allPrintableWord(uint64_t word) {
  uint64_t below_space = (word - kByteOnes * 0x20) & ~word & kByteHighBits;
  uint64_t above_tilde = ((word + kByteOnes * (0x7f - 0x7e)) | word) & kByteHighBits;
  return (below_space | above_tilde) == 0;
}

// Index of the first non-graphic byte at or after i (size when none): eight bytes at a time
// through text, which is where strings spends its time.
inline size_t endOfGraphicRun(const uint8_t* data, size_t i, size_t size) {
  while (i < size) {
    if (i + sizeof(uint64_t) <= size) {
      uint64_t word;
      std::memcpy(&word, data + i, sizeof word);
      if (allPrintableWord(word)) {
        i += sizeof word;
        continue;
      }
    }
    if (!kGraphicBytes[data[i]])
      break;
    ++i;
  }
  return i;
}

} // namespace

std::optional<StringEncoding> stringEncodingFromLetter(std::string_view letter) {
  if (letter == "s")
    return StringEncoding::Ascii7;
  if (letter == "l")
    return StringEncoding::Utf16Le;
  return std::nullopt;
}

std::string_view toLetter(StringEncoding encoding) {
  return encoding == StringEncoding::Utf16Le ? "l" : "s";
}

StringScanner::StringScanner(StringEncoding encoding, size_t min_length, Sink sink)
    : encoding_(encoding), min_length_(std::max<size_t>(min_length, 1)), sink_(std::move(sink)) {}

void StringScanner::begin(uint64_t offset) {
  finish();
  cursor_ = offset;
  previous_byte_ = 0;
}

void StringScanner::finish() {
  if (run_open_)
    endRun();
  previous_byte_ = 0;
}

void StringScanner::feed(uint64_t offset, std::span<const uint8_t> bytes) {
  assert(offset >= cursor_ && "blocks must arrive in address order");
  if (offset > cursor_)
    skipZeros(offset - cursor_);
  if (bytes.empty())
    return;
  if (encoding_ == StringEncoding::Ascii7)
    feedAscii(offset, bytes.data(), bytes.size());
  else
    feedUtf16(offset, bytes.data(), bytes.size());
  cursor_ = offset + bytes.size();
  // UTF-16LE: the character after the run's last one is known once its second byte is seen;
  // report the run now rather than at the next string, so hits come out promptly.
  if (encoding_ == StringEncoding::Utf16Le && run_open_ && cursor_ >= run_last_char_ + 4)
    endRun();
}

void StringScanner::skipZeros(uint64_t count) {
  if (encoding_ == StringEncoding::Ascii7) {
    if (run_open_)
      endRun(); // a zero byte is not graphic
    cursor_ += count;
    return;
  }
  // The first zero may be the high byte of a character whose low byte came before the gap;
  // every later character holds a zero low byte and is not graphic.
  static constexpr uint8_t kZero = 0;
  uint64_t gap_start = cursor_;
  feedUtf16(gap_start, &kZero, 1);
  cursor_ = gap_start + count;
  previous_byte_ = 0;
  if (run_open_ && cursor_ >= run_last_char_ + 4)
    endRun();
}

void StringScanner::feedAscii(uint64_t offset, const uint8_t* data, size_t size) {
  size_t i = 0;
  if (run_open_) { // the run open at the end of the previous block continues here
    i = endOfGraphicRun(data, 0, size);
    appendToRun(data, i);
    if (i == size)
      return;
    endRun();
  }
  // Outside a run, data[i - 1] is not graphic (or i is the block start and no run is open).
  // A reportable run starting anywhere in [i, i + n) covers data[i + n - 1], so when that byte
  // is not graphic no string starts before i + n, and otherwise none starts before the end of
  // the last non-graphic byte in the window: one or a few table lookups skip up to n bytes of
  // binary data, where a byte-by-byte loop would look at every byte.
  const size_t window = min_length_;
  while (i < size) {
    if (size - i >= window) { // the window lies inside the block
      size_t last = i + window - 1;
      if (!kGraphicBytes[data[last]]) {
        i = last + 1;
        continue;
      }
      size_t start = last;
      while (start > i && kGraphicBytes[data[start - 1]])
        --start;
      // [start, last] is graphic and a run starts at start: data[start - 1] is not graphic,
      // or start == i.
      size_t stop = endOfGraphicRun(data, last + 1, size);
      if (stop - start >= min_length_ || stop == size) {
        startRun(offset + start);
        appendToRun(data + start, stop - start);
        if (stop == size)
          return; // it may continue in the next block
        endRun();
      }
      i = stop + 1; // data[stop] is not graphic
      continue;
    }
    uint8_t byte = data[i];
    if (!kGraphicBytes[byte]) {
      ++i;
      continue;
    }
    size_t start = i;
    i = endOfGraphicRun(data, i + 1, size);
    if (i - start < min_length_ && i < size)
      continue; // too short and already ended: no need to build it
    startRun(offset + start);
    appendToRun(data + start, i - start);
    if (i < size)
      endRun(); // else it may continue in the next block
  }
}

void StringScanner::feedUtf16(uint64_t offset, const uint8_t* data, size_t size) {
  // The character at x is (byte[x], byte[x+1]); it is graphic when byte[x] is and byte[x+1]
  // is zero. Two graphic characters can never overlap (x and x+1), so one open run suffices:
  // a graphic character at run_last_char_ + 2 extends it, any other starts a new one.
  uint8_t previous = previous_byte_;
  for (size_t i = 0; i < size; ++i) {
    uint8_t byte = data[i];
    if (byte == 0 && kGraphicBytes[previous]) {
      uint64_t position = offset + i - 1;
      if (run_open_ && position == run_last_char_ + 2) {
        appendCharToRun(previous);
      } else {
        if (run_open_)
          endRun();
        startRun(position);
        appendCharToRun(previous);
      }
      run_last_char_ = position;
    }
    previous = byte;
  }
  previous_byte_ = previous;
}

void StringScanner::startRun(uint64_t offset) {
  run_open_ = true;
  run_.offset = offset;
  run_.length = 0;
  run_.text.clear();
  run_.truncated = false;
}

void StringScanner::appendToRun(const uint8_t* data, size_t size) {
  run_.length += size;
  size_t room = kMaxStringTextBytes - run_.text.size();
  size_t take = std::min(room, size);
  run_.text.append(reinterpret_cast<const char*>(data), take);
  if (take < size)
    run_.truncated = true;
}

void StringScanner::appendCharToRun(uint8_t character) {
  ++run_.length;
  if (run_.text.size() < kMaxStringTextBytes)
    run_.text.push_back(static_cast<char>(character));
  else
    run_.truncated = true;
}

void StringScanner::endRun() {
  run_open_ = false;
  if (run_.length >= min_length_)
    sink_(run_);
}

} // namespace procsnap::analyze

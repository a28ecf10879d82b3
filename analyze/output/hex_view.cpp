#include "analyze/output/hex_view.h"

#include <algorithm>
#include <cassert>

namespace procsnap::analyze {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// At least this many digits, so the addresses of one view line up whatever their size.
constexpr int kMinAddressDigits = 8;

} // namespace

std::string HexRow::groupedHex() const {
  std::string text;
  text.reserve(kHexBytesPerRow * 2 + kHexBytesPerRow / 2);
  for (size_t i = 0; i < kHexBytesPerRow; ++i) {
    if (i > 0 && i % 2 == 0)
      text += ' ';
    if (i >= size) {
      text += "  ";
    } else if (!known[i]) {
      text += "--";
    } else {
      text += kHexDigits[bytes[i] >> 4];
      text += kHexDigits[bytes[i] & 0xf];
    }
  }
  return text;
}

std::string HexRow::plainHex() const {
  std::string text;
  for (size_t i = 0; i < size && i < kHexBytesPerRow; ++i) {
    if (!known[i]) {
      text += "--";
      continue;
    }
    text += kHexDigits[bytes[i] >> 4];
    text += kHexDigits[bytes[i] & 0xf];
  }
  return text;
}

std::string HexRow::ascii() const {
  std::string text;
  for (size_t i = 0; i < size && i < kHexBytesPerRow; ++i) {
    if (!known[i])
      text += ' ';
    else if (bytes[i] >= 0x20 && bytes[i] <= 0x7e)
      text += static_cast<char>(bytes[i]);
    else
      text += '.';
  }
  return text;
}

std::string HexRow::reason() const {
  return mapped ? std::string(toString(state)) : std::string("unmapped");
}

std::string HexRow::notStoredSummary() const {
  std::string count = std::to_string(size) + (size == 1 ? " byte" : " bytes");
  if (!mapped)
    return count + " not mapped";
  if (state == PageState::Zero)
    return count + " of zeros (pages read as all zeros)";
  return count + " not stored (" + std::string(toString(state)) + ")";
}

std::string paddedHex(uint64_t address, int digits) {
  std::string text(static_cast<size_t>(std::max(digits, 1)), '0');
  for (size_t i = text.size(); i > 0 && address != 0; --i, address >>= 4)
    text[i - 1] = kHexDigits[address & 0xf];
  return "0x" + text;
}

int hexDigitsFor(uint64_t end) {
  uint64_t last = end == 0 ? 0 : end - 1;
  int digits = 1;
  while (last >>= 4)
    ++digits;
  return std::max(digits, kMinAddressDigits);
}

HexViewBuilder::HexViewBuilder(uint64_t start, Sink sink)
    : sink_(std::move(sink)), next_address_(start) {
  row_.address = start;
}

void HexViewBuilder::add(uint64_t address, std::span<const uint8_t> bytes,
                         std::span<const ReadRun> runs) {
  assert(address == next_address_ && "blocks must be contiguous");
  (void)address; // only checked
  for (const ReadRun& run : runs) {
    uint64_t from = std::max(run.start, next_address_);
    uint64_t to = std::min(run.end, address + bytes.size());
    if (from >= to)
      continue;
    ByteOrigin origin{run.mapped, run.mapped ? run.state : PageState::NotPresent};
    size_t index = static_cast<size_t>(from - address);
    size_t end_index = static_cast<size_t>(to - address);
    while (index < end_index) {
      // Whole rows of bytes the snapshot does not hold go straight into the summary.
      if (row_fill_ == 0 && !holdsBytes(origin.state) && end_index - index >= kHexBytesPerRow) {
        uint64_t rows = (end_index - index) / kHexBytesPerRow;
        addWholeRows(rows, origin);
        index += rows * kHexBytesPerRow;
        continue;
      }
      addByte(bytes[index], origin);
      ++index;
    }
  }
}

void HexViewBuilder::addByte(uint8_t byte, ByteOrigin origin) {
  if (row_fill_ == 0)
    row_.address = next_address_;
  row_.bytes[row_fill_] = byte;
  row_.known[row_fill_] =
      origin.mapped && (holdsBytes(origin.state) || origin.state == PageState::Zero);
  row_origins_[row_fill_] = origin;
  ++row_fill_;
  ++next_address_;
  if (row_fill_ == kHexBytesPerRow)
    endRow();
}

void HexViewBuilder::addWholeRows(uint64_t count, ByteOrigin origin) {
  uint64_t size = count * kHexBytesPerRow;
  extendSummary(next_address_, size, origin);
  next_address_ += size;
}

void HexViewBuilder::endRow() {
  if (row_fill_ == 0)
    return;
  row_.size = row_fill_;
  bool uniform = std::all_of(row_origins_.begin(), row_origins_.begin() + row_fill_,
                             [&](const ByteOrigin& origin) { return origin == row_origins_[0]; });
  if (uniform && !holdsBytes(row_origins_[0].state)) {
    extendSummary(row_.address, row_fill_, row_origins_[0]);
  } else {
    flushSummary();
    row_.kind = HexRow::Kind::Bytes;
    sink_(row_);
  }
  row_fill_ = 0;
}

void HexViewBuilder::extendSummary(uint64_t address, uint64_t size, ByteOrigin origin) {
  if (summary_open_ && summary_.mapped == origin.mapped && summary_.state == origin.state &&
      summary_.address + summary_.size == address) {
    summary_.size += size;
    return;
  }
  flushSummary();
  summary_open_ = true;
  summary_ = HexRow{};
  summary_.kind = HexRow::Kind::NotStored;
  summary_.address = address;
  summary_.size = size;
  summary_.mapped = origin.mapped;
  summary_.state = origin.state;
}

void HexViewBuilder::flushSummary() {
  if (!summary_open_)
    return;
  summary_open_ = false;
  sink_(summary_);
}

void HexViewBuilder::finish() {
  endRow();
  flushSummary();
}

} // namespace procsnap::analyze

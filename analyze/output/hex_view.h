// Turns memory read from a snapshot into the rows of an xxd-like view: 16 bytes per row with
// hex and ASCII, and one summary row for each stretch of whole rows whose bytes the snapshot
// does not hold (by reason), so a hole of megabytes costs one line, not thousands.
// Pure: no snapshot, no printer; cmd_read adds labels and prints.
#pragma once

#include "analyze/model/snapshot.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace procsnap::analyze {

inline constexpr size_t kHexBytesPerRow = 16;

struct HexRow {
  enum class Kind {
    Bytes,     // up to 16 bytes, some maybe unknown
    NotStored, // whole rows of one reason: not stored (or stored as all zeros), or unmapped
  };

  Kind kind = Kind::Bytes;
  uint64_t address = 0;
  uint64_t size = 0; // bytes covered: 1..16 for Bytes rows, a multiple of 16 or the tail after

  // Bytes rows. Bytes of Zero pages are known (they were read as zeros); bytes of other
  // unstored pages are not, and print as "--".
  std::array<uint8_t, kHexBytesPerRow> bytes{};
  std::array<bool, kHexBytesPerRow> known{};

  // NotStored rows.
  bool mapped = true;
  PageState state = PageState::NotPresent;

  // "0dd6 1200 0000 0000 ..." (xxd grouping, padded to a full row), "--" for unknown bytes.
  std::string groupedHex() const;
  // "0dd61200...", two characters a byte, "--" for unknown bytes; no padding.
  std::string plainHex() const;
  // Printable ASCII as is, '.' for other known bytes, ' ' for unknown ones.
  std::string ascii() const;
  // "8192 bytes not stored (not-present)", "4096 bytes not mapped", "4096 bytes of zeros
  // (page stored as all zeros)".
  std::string notStoredSummary() const;
  // The reason in one word for JSON: the PageState name, or "unmapped".
  std::string reason() const;
};

// "0x" followed by the address padded to digits hex digits.
std::string paddedHex(uint64_t address, int digits);
// Hex digits needed to print every address below end (at least 8).
int hexDigitsFor(uint64_t end);

class HexViewBuilder final {
public:
  using Sink = std::function<void(const HexRow&)>;

  // Rows start at start and every 16 bytes after it.
  HexViewBuilder(uint64_t start, Sink sink);
  HexViewBuilder(const HexViewBuilder&) = delete;
  HexViewBuilder& operator=(const HexViewBuilder&) = delete;

  // The bytes at address, which must be where the previous call ended (start, first), and
  // the runs Snapshot::read gave for them (they must cover the bytes).
  void add(uint64_t address, std::span<const uint8_t> bytes, std::span<const ReadRun> runs);
  // Emits the partial last row and the pending summary.
  void finish();

private:
  struct ByteOrigin {
    bool mapped = true;
    PageState state = PageState::Stored;
    bool operator==(const ByteOrigin&) const = default;
  };

  void addByte(uint8_t byte, ByteOrigin origin);
  void addWholeRows(uint64_t count, ByteOrigin origin);
  void endRow();
  void extendSummary(uint64_t address, uint64_t size, ByteOrigin origin);
  void flushSummary();

  Sink sink_;
  uint64_t next_address_;
  // The row being filled.
  HexRow row_;
  std::array<ByteOrigin, kHexBytesPerRow> row_origins_{};
  size_t row_fill_ = 0;
  // The summary row being extended, when summary_open_.
  bool summary_open_ = false;
  HexRow summary_;
};

} // namespace procsnap::analyze

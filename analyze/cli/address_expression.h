// WHAT a command reads or dumps, as the user writes it:
//   0xSTART-0xEND      a half-open range (END exclusive, like gdb's `dump memory`)
//   0xSTART+LEN        LEN bytes from START (LEN: 4096, 0x1000, 4k, 1M, 2G)
//   0xADDRESS          one address: the region starting there (dump) or a start (read)
//   MODULE:SECTION     a module's section at runtime addresses, e.g. libc.so.6:.data
//   SYMBOL             a symbol, or MODULE!SYMBOL, e.g. g_data_counter
// Numbers are hex with 0x, else decimal. Parsing needs no snapshot (so it is checked before
// anything is opened); resolving turns the expression into addresses through the address
// space.
#pragma once

#include "analyze/model/address_space.h"

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

#include <cstdint>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct AddressExpression {
  enum class Kind { Range, StartLength, Address, ModuleSection, Symbol };

  Kind kind = Kind::Address;
  std::string text;   // as written, for messages
  uint64_t start = 0; // Range, StartLength, Address
  uint64_t end = 0;   // Range: exclusive; StartLength: start + length (checked not to wrap)
  std::string module; // ModuleSection
  std::string section;
  std::string symbol; // Symbol: "name" or "module!name"
};

// Errors say what was wrong, quoting the text: "invalid range '0x20-0x10': the end is not
// above the start".
llvm::Expected<AddressExpression> parseAddressExpression(llvm::StringRef text);

// A byte count: decimal, 0x hex, or decimal with a binary suffix k/K (KiB), m/M, g/G.
// Zero is rejected (nothing to show or write).
llvm::Expected<uint64_t> parseByteCount(llvm::StringRef text);

// What a lone address means.
enum class LoneAddress {
  RegionStart, // must be the first byte of a region; resolves to the whole region (dump)
  Point,       // any mapped address; resolves to an empty range at it (read adds a length)
};

struct ResolvedRange {
  AddressRange range;      // empty (start == end) for a lone address resolved as Point
  std::string description; // "g_data_counter", "libc.so.6:.data", "region [heap]", "0x1-0x2"
  bool has_extent =
      false; // the expression itself gave a size (range, region, section, sized symbol)
  std::vector<std::string> notes; // e.g. "3 symbols named 'x'; using the first at 0x..."
};

// True when resolving needs an address space (symbols, sections); addresses and ranges need
// only the snapshot, so commands can skip locating modules for them.
bool needsAddressSpace(const AddressExpression& expression);

// space may be null when !needsAddressSpace(expression).
llvm::Expected<ResolvedRange> resolveAddressExpression(const AddressExpression& expression,
                                                       const Snapshot& snapshot,
                                                       const AddressSpace* space,
                                                       LoneAddress lone_address);

// One address or size: "0x1f" (hex) or "31" (decimal). Errors quote the text.
llvm::Expected<uint64_t> parseAddress(llvm::StringRef text);

} // namespace procsnap::analyze

// The diff engine: what changed between two snapshots of a process (BASE, then NEW), as plain
// data the diff command prints and tests inspect without a command line.
// - regions: added, removed, grown, shrunk, moved, re-protected or re-classified, paired by
//   region_matcher.h;
// - bytes: changed pages and bytes of every matched region (region_content_diff.h: chunk
//   digests first, bytes only where they differ);
// - globals: the .data/.bss symbols of modules present in both whose bytes changed, with old
//   and new values;
// - totals per region kind before and after;
// - optionally the strings found in NEW's changed or added bytes and not in BASE's.
#pragma once

#include "analyze/engines/region_content_diff.h"
#include "analyze/engines/region_matcher.h"
#include "analyze/model/address_space.h"
#include "analyze/model/snapshot.h"

#include <llvm/Support/Error.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace procsnap::analyze {

// Most new strings a diff lists: a leak of text can be millions of lines; the rest are
// counted, not kept.
inline constexpr size_t kMaxNewStrings = 10000;
// Values of larger symbols are shown as this many bytes of hex around the first difference.
inline constexpr size_t kMaxShownValueBytes = 32;

struct DiffOptions {
  bool strings = false; // find the strings new in NEW
  size_t min_string_length = 4;
  size_t max_strings = kMaxNewStrings;
};

struct RegionDiff {
  RegionPair pair;
  std::optional<MapsEntry> base; // absent: added
  std::optional<MapsEntry> next; // absent: removed
  RegionKind base_kind = RegionKind::PrivateAnon;
  RegionKind next_kind = RegionKind::PrivateAnon;
  ContentDiff content; // matched regions only
  // False when a side is an ELF core: PT_LOAD flags say r/w/x but not private or shared, and
  // what one source does not know is not a difference.
  bool sharing_known = true;

  bool added() const { return !base; }
  bool removed() const { return !next; }
  int64_t sizeDelta() const;
  bool permissionsChanged() const;
  bool kindChanged() const { return base && next && base_kind != next_kind; }
  bool layoutChanged() const;
  bool contentsChanged() const { return content.bytes_changed > 0; }
  bool changed() const { return layoutChanged() || contentsChanged(); }
  // What changed, in words: "added", "removed", "grown", "shrunk", "moved", "permissions",
  // "kind", "contents" (several for one region).
  std::vector<std::string> changes() const;
};

enum class ValueFormat { Integer, String, Hex };
std::string_view toString(ValueFormat format); // "integer", "string", "hex"

struct GlobalDiff {
  std::string module_name; // "sample_target"
  std::string module_path;
  std::string symbol;  // demangled
  std::string section; // ".data", ".bss"
  uint64_t base_address = 0;
  uint64_t new_address = 0;
  uint64_t size = 0;
  uint64_t bytes_changed = 0;
  ValueFormat format = ValueFormat::Hex;
  // Integer: the values; String: the texts up to the first NUL; Hex: the bytes as hex, for a
  // symbol larger than kMaxShownValueBytes the kMaxShownValueBytes from shown_offset on.
  uint64_t old_integer = 0;
  uint64_t new_integer = 0;
  std::string old_text;
  std::string new_text;
  uint64_t shown_offset = 0;
};

struct KindTotal {
  uint64_t regions = 0;
  uint64_t mapped_bytes = 0;
  // smaps Rss summed; nullopt when any region of the kind has none (a core has no smaps): a
  // sum of the known ones would read as a drop to 0 beside a source that knows it.
  std::optional<uint64_t> rss_bytes = 0;
  uint64_t stored_bytes = 0;
};
using KindTotals = std::array<KindTotal, kRegionKindCount>;
KindTotals totalsByKind(const SnapshotMetadata& metadata);

struct NewString {
  uint64_t address = 0; // in NEW
  RegionKind kind = RegionKind::PrivateAnon;
  uint64_t length = 0;
  std::string text;
  bool truncated = false;
};

struct SnapshotDiff {
  uint64_t page_size = 4096;         // the base's, the unit of changed pages
  std::vector<std::string> warnings; // different processes or executables
  std::vector<RegionDiff> regions;   // every pair, changed or not, in address order
  std::vector<GlobalDiff> globals;   // in module order, then address
  KindTotals base_totals{};
  KindTotals new_totals{};
  bool strings_searched = false;
  std::vector<NewString> new_strings; // in address order
  uint64_t new_strings_omitted = 0;   // found beyond max_strings

  bool differs() const;
  // Sums over regions.
  ContentDiff contentTotals() const;
};

// The warning for snapshots of different processes or executables, or nothing.
std::vector<std::string> identityWarnings(const SnapshotMetadata& base,
                                          const SnapshotMetadata& next);

// Gives a snapshot's address space when the diff needs symbols: called at most once, and only
// when bytes of a module's data changed, because building one (locating and parsing every
// module) costs more than comparing two near-identical multi-GiB snapshots by digest. May
// return nullptr (no globals then).
using AddressSpaceProvider = std::function<llvm::Expected<const AddressSpace*>()>;

// Compares base with next. The address spaces give the symbols; without them (nullptr) the
// diff has no globals. Errors: a snapshot cannot be read (damage), an address space cannot be
// built.
llvm::Expected<SnapshotDiff>
diffSnapshots(const Snapshot& base, const AddressSpaceProvider& base_space, const Snapshot& next,
              const AddressSpaceProvider& next_space, const DiffOptions& options = {});
llvm::Expected<SnapshotDiff> diffSnapshots(const Snapshot& base, const AddressSpace* base_space,
                                           const Snapshot& next, const AddressSpace* next_space,
                                           const DiffOptions& options = {});

} // namespace procsnap::analyze

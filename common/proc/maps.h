// /proc/PID/maps: one MapsEntry per line. Parsers take bytes, not paths, so tests can feed
// them strings and the capturer can parse what it read while the target was frozen.
#pragma once

#include "common/util/result.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace procsnap {

struct Permissions {
  bool read = false;
  bool write = false;
  bool execute = false;
  bool shared = false; // 's' versus 'p'

  std::string str() const; // "r-xp" as in maps
  bool none() const { return !read && !write && !execute; }
  friend bool operator==(const Permissions&, const Permissions&) = default;
};

struct MapsEntry {
  uint64_t start = 0; // inclusive
  uint64_t end = 0;   // exclusive
  Permissions perms;
  uint64_t offset = 0; // file offset of start, in bytes
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;     // as the kernel prints it, without the " (deleted)" suffix; may be empty
  bool deleted = false; // the kernel appended " (deleted)"

  uint64_t size() const { return end - start; }
  bool isPseudo() const { return path.size() > 1 && path.front() == '[' && path.back() == ']'; }
  bool isAnonymous() const { return inode == 0 && (path.empty() || isPseudo()); }
  friend bool operator==(const MapsEntry&, const MapsEntry&) = default;
};

// The element of `sorted` (ordered by start address, as maps lists mappings) whose mapping,
// mapOf(element), is identical to map (same range, permissions, offset, device, inode and
// path), or null: "is this still the same mapping" across two reads of maps or smaps.
template <typename Sorted, typename MapOf>
auto findIdenticalMapping(Sorted& sorted, const MapsEntry& map, MapOf mapOf)
    -> decltype(&*sorted.begin()) {
  auto it = std::lower_bound(
      sorted.begin(), sorted.end(), map.start,
      [&](const auto& element, uint64_t start) { return mapOf(element).start < start; });
  return it != sorted.end() && mapOf(*it) == map ? &*it : nullptr;
}

// Parses one line without its newline.
Result<MapsEntry> parseMapsLine(std::string_view line);

// Parses a whole maps file. Zero-length entries are skipped. An entry starting below the end
// of the previous one means the file changed while it was read: ErrorCode::TornRead.
Result<std::vector<MapsEntry>> parseMaps(std::string_view text);

// Formats an entry the way the kernel does (path column at 73 characters on 64-bit).
std::string formatMapsLine(const MapsEntry& entry);

} // namespace procsnap

// /proc/PID/status, auxv, and pagemap entries.
#pragma once

#include "common/util/result.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace procsnap {

struct ProcStatus {
  std::vector<std::pair<std::string, std::string>> fields; // every "Key:\tvalue", trimmed, in order
  std::string name;
  char state = '?'; // first letter of "State:"
  int32_t pid = 0, ppid = 0, tgid = 0, tracer_pid = 0;
  std::array<uint32_t, 4> uid{}; // real, effective, saved, filesystem
  std::array<uint32_t, 4> gid{};
  uint32_t threads = 0;

  std::optional<std::string_view> get(std::string_view key) const;
};

Result<ProcStatus> parseStatus(std::string_view text);

struct AuxvEntry {
  uint64_t type = 0;
  uint64_t value = 0;
};

// Parses the raw auxv vector (pairs of native words ending with AT_NULL). word_size is 8 or 4.
Result<std::vector<AuxvEntry>> parseAuxv(std::span<const std::byte> bytes, int word_size = 8);
std::string_view auxvTypeName(uint64_t type); // "AT_PHDR", ... or "" when unknown

// One 64-bit /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
struct PagemapEntry {
  bool present = false;
  bool swapped = false;
  bool file_or_shared_anon = false;
  bool exclusive = false;
  bool uffd_wp = false;
  bool soft_dirty = false;
  uint64_t pfn = 0; // zero without CAP_SYS_ADMIN; swap type/offset when swapped
};

PagemapEntry decodePagemapEntry(uint64_t raw);

} // namespace procsnap

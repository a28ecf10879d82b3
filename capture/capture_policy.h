// Which regions the capture copies, and why the others are skipped.
//
// The kernel's coredump_filter bits (Documentation/filesystems/proc.rst): 0 private anon,
// 1 shared anon, 2 private file-backed, 3 shared file-backed, 4 ELF headers, 5/6 private /
// shared hugetlb, 7/8 private / shared DAX. VM_DONTDUMP ("dd") is always excluded.
//
// procsnap's default deliberately differs from the kernel's for private file-backed mappings:
// they are ALWAYS stored (bit 2 is ignored), because procsnap promises analysis without the
// original host — module text, rodata and the written (COW'd) pages of .data/relro are in the
// archive even when the binaries are gone or replaced. Bit 4 is therefore moot. So the
// default stores every readable region except:
//   - "dd" regions                                   -> ExcludedDontDump
//   - private anonymous when bit 0 is clear          -> ExcludedFilter
//   - shared anonymous when bit 1 is clear           -> ExcludedFilter
//   - shared file-backed when bit 3 is clear         -> ExcludedFilter (default 0x33: excluded)
//   - hugetlb mappings (VmFlags "ht") by bits 5 / 6  -> ExcludedFilter
//   - [vvar], [vvar_vclock], [vsyscall]              -> Unreadable (the kernel refuses reads)
// --filter / --exclude then narrow that; --all ignores "dd" and coredump_filter (but never
// reads what cannot be read).
#pragma once

#include "common/model/region_kind.h"
#include "common/model/snapshot_metadata.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace procsnap {

// The kernel's default /proc/PID/coredump_filter.
inline constexpr uint32_t kDefaultCoredumpFilter = 0x33;

struct CapturePolicy {
  bool all = false;                                  // --all: ignore dd and coredump_filter
  std::optional<std::set<RegionKind>> only_kinds;    // --filter KIND,...
  std::set<RegionKind> exclude_kinds;                // --exclude KIND
  std::vector<std::string> exclude_paths;            // --exclude PATH substrings / fnmatch globs
  uint32_t coredump_filter = kDefaultCoredumpFilter; // the target's /proc/PID/coredump_filter
};

// Where a region's bytes come from in a capture: nowhere (excluded), the frozen target, the
// --cow fork after the thaw, or the --precopy copy brought up to date while frozen.
enum CopySource : char { kSkip, kCopyFrozen, kCopyFromFork, kRefreshPrecopied };

// Whole-region decision: nullopt = copy it; otherwise the state all its pages get.
std::optional<PageState> regionExclusion(const RegionRecord& region, const CapturePolicy& policy);

// True when path matches one of the --exclude patterns: a pattern with glob characters
// (*?[) is an fnmatch glob on the whole path, otherwise a substring.
bool pathExcluded(const std::string& path, const std::vector<std::string>& patterns);

// Fills region.pages with one run [start, end) in state.
void markWholeRegion(RegionRecord& region, PageState state);

} // namespace procsnap

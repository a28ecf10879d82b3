#include "capture/capture_policy.h"

#include <fnmatch.h>

namespace procsnap {

namespace {

// coredump_filter bits (Documentation/filesystems/proc.rst, "coredump_filter").
constexpr uint32_t kFilterAnonPrivate = 1u << 0;
constexpr uint32_t kFilterAnonShared = 1u << 1;
constexpr uint32_t kFilterMappedShared = 1u << 3;
constexpr uint32_t kFilterHugetlbPrivate = 1u << 5;
constexpr uint32_t kFilterHugetlbShared = 1u << 6;

bool kernelRefusesReads(const RegionRecord& region) {
  const std::string& path = region.map().path;
  return region.kind == RegionKind::Vvar || region.kind == RegionKind::Vsyscall ||
         path == "[vvar]" || path == "[vvar_vclock]" || path == "[vsyscall]";
}

// The kernel counts a shared mapping of an unlinked file (memfd, SysV shm, MAP_SHARED|
// MAP_ANONYMOUS which is shmem, a deleted file) as shared anonymous memory (i_nlink == 0 in
// vma_dump_size), everything else shared as shared file-backed.
bool sharedAnonymousLike(const RegionRecord& region) {
  const MapsEntry& map = region.map();
  return region.kind == RegionKind::SharedAnon || map.isAnonymous() || map.deleted ||
         map.path.starts_with("/memfd:") || map.path.starts_with("/SYSV") ||
         map.path == "/dev/zero";
}

std::optional<PageState> coredumpFilterExclusion(const RegionRecord& region, uint32_t filter) {
  const MapsEntry& map = region.map();
  if (region.smaps.hasVmFlag("ht")) {
    const uint32_t bit = map.perms.shared ? kFilterHugetlbShared : kFilterHugetlbPrivate;
    return (filter & bit) ? std::nullopt : std::optional(PageState::ExcludedFilter);
  }
  if (map.perms.shared) {
    const uint32_t bit = sharedAnonymousLike(region) ? kFilterAnonShared : kFilterMappedShared;
    return (filter & bit) ? std::nullopt : std::optional(PageState::ExcludedFilter);
  }
  // Private file-backed mappings are always stored (see the header): bit 2 and 4 are moot.
  if (map.isAnonymous() && !(filter & kFilterAnonPrivate))
    return PageState::ExcludedFilter;
  return std::nullopt;
}

} // namespace

bool pathExcluded(const std::string& path, const std::vector<std::string>& patterns) {
  if (path.empty())
    return false;
  for (const std::string& pattern : patterns) {
    if (pattern.empty())
      continue;
    if (pattern.find_first_of("*?[") != std::string::npos) {
      if (fnmatch(pattern.c_str(), path.c_str(), 0) == 0)
        return true;
    } else if (path.find(pattern) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::optional<PageState> regionExclusion(const RegionRecord& region, const CapturePolicy& policy) {
  // Even --all never reads what the kernel refuses to read.
  if (kernelRefusesReads(region))
    return PageState::Unreadable;
  if (policy.only_kinds && !policy.only_kinds->contains(region.kind))
    return PageState::ExcludedFilter;
  if (policy.exclude_kinds.contains(region.kind))
    return PageState::ExcludedFilter;
  if (pathExcluded(region.map().path, policy.exclude_paths))
    return PageState::ExcludedFilter;
  if (policy.all)
    return std::nullopt;
  if (region.smaps.dontDump())
    return PageState::ExcludedDontDump;
  return coredumpFilterExclusion(region, policy.coredump_filter);
}

void markWholeRegion(RegionRecord& region, PageState state) {
  region.pages.clear();
  if (region.map().end > region.map().start)
    region.pages.push_back(PageRun{region.map().start, region.map().end, state});
}

} // namespace procsnap

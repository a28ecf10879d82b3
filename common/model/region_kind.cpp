#include "common/model/region_kind.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <tuple>

namespace procsnap {

namespace {

constexpr std::array<std::string_view, kRegionKindCount> kRegionKindNames = {
    "text", "rodata", "data",     "bss",  "heap",        "stack", "thread-stack",
    "vdso", "vvar",   "vsyscall", "anon", "shared-anon", "file",  "guard",
};

// A mapped file is identified by device, inode and path: two files with one path (a library
// replaced on disk while an old copy stays mapped) are two modules.
using FileKey = std::tuple<uint32_t, uint32_t, uint64_t, std::string_view>;

FileKey fileKey(const MapsEntry& entry) {
  return {entry.dev_major, entry.dev_minor, entry.inode, entry.path};
}

// Shared anonymous memory appears under names of its own: MAP_SHARED|MAP_ANONYMOUS as
// "/dev/zero (deleted)" or "[anon_shmem:NAME]", SysV shm as "/SYSV<key> (deleted)", memfd
// as "/memfd:NAME (deleted)".
bool isSharedAnonymous(const MapsEntry& entry) {
  const std::string_view path = entry.path;
  if (entry.perms.shared && entry.inode == 0 && path.empty())
    return true;
  return path == "/dev/zero" || path.starts_with("/SYSV") || path.starts_with("/memfd:") ||
         path.starts_with("[anon_shmem:");
}

bool isFile(const MapsEntry& entry) {
  return !entry.path.empty() && !entry.isPseudo();
}

// Anonymous private memory: no name, or a name given with PR_SET_VMA_ANON_NAME.
bool isPrivateAnonymous(const MapsEntry& entry) {
  return !entry.perms.shared && (entry.path.empty() || entry.path.starts_with("[anon:"));
}

std::optional<RegionKind> pseudoKind(std::string_view path) {
  if (path == "[heap]")
    return RegionKind::Heap;
  if (path == "[stack]")
    return RegionKind::MainStack;
  if (path == "[vdso]")
    return RegionKind::Vdso;
  if (path == "[vvar]" || path == "[vvar_vclock]")
    return RegionKind::Vvar;
  if (path == "[vsyscall]")
    return RegionKind::Vsyscall;
  return std::nullopt;
}

} // namespace

std::string_view toString(RegionKind kind) {
  auto index = static_cast<size_t>(kind);
  return index < kRegionKindNames.size() ? kRegionKindNames[index] : "unknown";
}

std::optional<RegionKind> regionKindFromString(std::string_view name) {
  for (size_t i = 0; i < kRegionKindNames.size(); ++i)
    if (kRegionKindNames[i] == name)
      return static_cast<RegionKind>(i);
  return std::nullopt;
}

std::vector<RegionKind> classifyRegions(std::span<const MapsEntry> maps,
                                        std::span<const uint64_t> thread_stack_pointers) {
  // A mapped file is an ELF module when any of its mappings is executable; the end of its
  // last writable mapping is where the anonymous rest of its .bss begins.
  std::set<FileKey> modules;
  for (const MapsEntry& entry : maps)
    if (isFile(entry) && !isSharedAnonymous(entry) && entry.perms.execute)
      modules.insert(fileKey(entry));
  std::map<FileKey, uint64_t> last_writable_end;
  for (const MapsEntry& entry : maps) {
    if (!entry.perms.write || !isFile(entry) || !modules.contains(fileKey(entry)))
      continue;
    uint64_t& end = last_writable_end[fileKey(entry)];
    end = std::max(end, entry.end);
  }
  std::set<uint64_t> bss_starts;
  for (const auto& [key, end] : last_writable_end)
    bss_starts.insert(end);

  auto holdsStackPointer = [&](const MapsEntry& entry) {
    return std::any_of(thread_stack_pointers.begin(), thread_stack_pointers.end(),
                       [&](uint64_t sp) { return sp >= entry.start && sp < entry.end; });
  };

  std::vector<RegionKind> kinds;
  kinds.reserve(maps.size());
  for (const MapsEntry& entry : maps) {
    RegionKind kind = RegionKind::PrivateAnon;
    if (auto pseudo = pseudoKind(entry.path)) {
      kind = *pseudo;
    } else if (entry.perms.none()) {
      kind = RegionKind::Guard;
    } else if (isSharedAnonymous(entry)) {
      kind = RegionKind::SharedAnon;
    } else if (isFile(entry)) {
      if (!modules.contains(fileKey(entry)))
        kind = RegionKind::FileBacked;
      else if (entry.perms.execute)
        kind = RegionKind::Text;
      else if (entry.perms.write)
        kind = RegionKind::Data;
      else
        kind = RegionKind::Rodata;
    } else if (holdsStackPointer(entry)) {
      kind = RegionKind::ThreadStack;
    } else if (isPrivateAnonymous(entry) && entry.perms.read && entry.perms.write &&
               bss_starts.contains(entry.start)) {
      kind = RegionKind::Bss;
    }
    kinds.push_back(kind);
  }
  return kinds;
}

} // namespace procsnap

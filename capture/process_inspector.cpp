#include "capture/process_inspector.h"

#include "common/model/region_kind.h"
#include "common/proc/files.h"
#include "common/proc/maps.h"
#include "common/proc/smaps.h"
#include "common/proc/status.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace procsnap {

namespace {

// Bound on small /proc files (status, cmdline, environ, limits, auxv): the kernel caps
// cmdline/environ reads at the argument area, far below this.
constexpr size_t kSmallFileLimit = 16u << 20;

std::vector<std::string> splitNul(std::string_view bytes) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin < bytes.size()) {
    size_t end = bytes.find('\0', begin);
    if (end == std::string_view::npos)
      end = bytes.size();
    parts.emplace_back(bytes.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

std::string readLink(const std::string& path) {
  char buffer[PATH_MAX + 1];
  const ssize_t length = ::readlink(path.c_str(), buffer, PATH_MAX);
  if (length < 0)
    return {}; // deliberately ignored: kernel threads and gone files have no link
  return std::string(buffer, static_cast<size_t>(length));
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0'))
    text.pop_back();
  return text;
}

std::vector<uint32_t> parseGroups(std::string_view text) {
  std::vector<uint32_t> groups;
  uint64_t value = 0;
  bool in_number = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<uint64_t>(c - '0');
      in_number = true;
      if (value > UINT32_MAX)
        return groups; // malformed: keep what was parsed
    } else {
      if (in_number)
        groups.push_back(static_cast<uint32_t>(value));
      value = 0;
      in_number = false;
    }
  }
  if (in_number)
    groups.push_back(static_cast<uint32_t>(value));
  return groups;
}

} // namespace

bool processExited(pid_t pid) {
  auto stat = readProcFile(procPath(pid, "stat"), 4096);
  if (!stat)
    return true;
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size())
    return true;
  const char state = (*stat)[paren + 2];
  return state == 'Z' || state == 'X';
}

Result<ProcessInfo> readProcessInfo(pid_t pid, bool include_environ) {
  if (pid <= 0)
    return Error::make(ErrorCode::InvalidArgument, "invalid pid: " + std::to_string(pid));
  auto status_text = readProcFile(procPath(pid, "status"), kSmallFileLimit);
  if (!status_text) {
    if (status_text.error().code == ErrorCode::NotFound ||
        status_text.error().code == ErrorCode::ProcessGone)
      return Error::make(ErrorCode::NotFound, "no such process: " + std::to_string(pid));
    return std::move(status_text).takeError();
  }
  auto status = parseStatus(*status_text);
  if (!status)
    return std::move(status).takeError();

  ProcessInfo info;
  info.pid = pid;
  info.ppid = status->ppid;
  info.status = status->fields;
  info.uid = status->uid;
  info.gid = status->gid;
  if (auto groups = status->get("Groups"))
    info.groups = parseGroups(*groups);

  if (auto comm = readProcFile(procPath(pid, "comm"), kSmallFileLimit))
    info.comm = trimmed(std::move(*comm));
  else
    info.comm = status->name;
  info.exe = readLink(procPath(pid, "exe"));
  if (info.exe.ends_with(" (deleted)"))
    info.exe.resize(info.exe.size() - std::strlen(" (deleted)"));
  info.cwd = readLink(procPath(pid, "cwd"));
  if (auto cmdline = readProcFile(procPath(pid, "cmdline"), kSmallFileLimit))
    info.cmdline = splitNul(*cmdline);
  if (auto auxv = readProcFile(procPath(pid, "auxv"), kSmallFileLimit)) {
    auto entries = parseAuxv(std::as_bytes(std::span(auxv->data(), auxv->size())));
    if (entries)
      info.auxv = std::move(*entries);
  }
  if (auto limits = readProcFile(procPath(pid, "limits"), kSmallFileLimit))
    info.limits = std::move(*limits);
  if (auto filter = readProcFile(procPath(pid, "coredump_filter"), kSmallFileLimit)) {
    char* end = nullptr;
    const unsigned long value = std::strtoul(filter->c_str(), &end, 16);
    if (end != filter->c_str() && value <= UINT32_MAX)
      info.coredump_filter = static_cast<uint32_t>(value);
  }
  if (include_environ) {
    auto environ_text = readProcFile(procPath(pid, "environ"), kSmallFileLimit);
    if (!environ_text)
      return std::move(environ_text).takeError();
    info.environ = splitNul(*environ_text);
    info.has_environ = true;
  }
  return info;
}

HostInfo readHostInfo() {
  HostInfo host;
  struct utsname names {};
  if (::uname(&names) == 0) {
    host.hostname = names.nodename;
    host.kernel_release = names.release;
    host.machine = names.machine;
  }
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (page_size > 0)
    host.page_size = static_cast<uint32_t>(page_size);
  if (auto boot_id = readProcFile("/proc/sys/kernel/random/boot_id", 4096))
    host.boot_id = trimmed(std::move(*boot_id));
  return host;
}

namespace {

const MapsEntry& smapsMap(const SmapsEntry& entry) {
  return entry.map;
}

// RegionRecords for entries (sorted by address), each with its kind; pages left empty.
std::vector<RegionRecord> classifiedRegions(std::vector<SmapsEntry> entries,
                                            std::span<const uint64_t> thread_stack_pointers) {
  std::vector<MapsEntry> maps;
  maps.reserve(entries.size());
  for (const SmapsEntry& entry : entries)
    maps.push_back(entry.map);
  const std::vector<RegionKind> kinds = classifyRegions(maps, thread_stack_pointers);

  std::vector<RegionRecord> regions(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    regions[i].smaps = std::move(entries[i]);
    regions[i].kind = i < kinds.size() ? kinds[i] : RegionKind::PrivateAnon;
  }
  return regions;
}

} // namespace

Result<std::vector<RegionRecord>> readRegions(pid_t pid,
                                              std::span<const uint64_t> thread_stack_pointers) {
  std::vector<SmapsEntry> entries;
  auto smaps = readSmapsStable(pid);
  if (smaps) {
    entries = std::move(*smaps);
  } else {
    if (smaps.error().code == ErrorCode::ProcessGone || smaps.error().code == ErrorCode::NotFound)
      return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid) + " exited");
    // smaps unreadable: maps alone still gives the layout (smaps fields stay empty).
    auto maps = readMapsStable(pid);
    if (!maps)
      return std::move(maps).takeError();
    for (MapsEntry& map : *maps) {
      SmapsEntry entry;
      entry.map = std::move(map);
      entries.push_back(std::move(entry));
    }
  }

  return classifiedRegions(std::move(entries), thread_stack_pointers);
}

Result<std::vector<RegionRecord>>
readRegionsWithEarlierSmaps(pid_t pid, std::span<const uint64_t> thread_stack_pointers,
                            const std::vector<SmapsEntry>& earlier,
                            std::vector<char>& smaps_known) {
  auto maps = readMapsStable(pid);
  if (!maps) {
    if (maps.error().code == ErrorCode::NotFound)
      return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid) + " exited");
    return std::move(maps).takeError();
  }
  std::vector<SmapsEntry> entries(maps->size());
  smaps_known.assign(maps->size(), 0);
  for (size_t i = 0; i < maps->size(); ++i) {
    MapsEntry& map = (*maps)[i];
    if (const SmapsEntry* same = findIdenticalMapping(earlier, map, smapsMap)) {
      entries[i] = *same;
      smaps_known[i] = 1;
    }
    entries[i].map = std::move(map);
  }
  return classifiedRegions(std::move(entries), thread_stack_pointers);
}

} // namespace procsnap

// Reading what /proc says about a process and the host, for the snapshot metadata.
#pragma once

#include "common/result.h"
#include "common/snapshot_metadata.h"

#include <cstdint>
#include <span>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// status (all fields), cmdline, exe (readlink), cwd, comm, auxv, limits, coredump_filter,
// uid/gid/groups; environ only when include_environ (it often holds secrets). Fields that
// cannot be read (e.g. exe of a kernel thread) stay empty; only a missing process
// (NotFound) or an unreadable status (PermissionDenied) is an error.
Result<ProcessInfo> readProcessInfo(pid_t pid, bool include_environ);

// hostname, kernel release, machine (uname), page size, /proc/sys/kernel/random/boot_id.
HostInfo readHostInfo();

// smaps (falling back to maps when smaps is unreadable) + classifyRegions; RegionRecord.pages
// left empty. A torn read (the file changed while read) is retried a few times.
Result<std::vector<RegionRecord>> readRegions(pid_t pid,
                                              std::span<const uint64_t> thread_stack_pointers);

// Reads a whole /proc file (size 0 in stat, so read until EOF). Bounded by max_bytes.
Result<std::string> readProcFile(const std::string& path, size_t max_bytes = 256u << 20);

} // namespace procsnap

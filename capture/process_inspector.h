// Reading what /proc says about a process and the host, for the snapshot metadata.
#pragma once

#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstdint>
#include <span>
#include <string>
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

// The same regions from maps alone (cheap: smaps walks every page table, maps does not),
// for --cow, which reads smaps before the freeze: each region takes the smaps of `earlier`
// whose maps line is identical. smaps_known[i] is 0 where none is (the mapping changed in
// between); its fields and VmFlags are then empty.
Result<std::vector<RegionRecord>>
readRegionsWithEarlierSmaps(pid_t pid, std::span<const uint64_t> thread_stack_pointers,
                            const std::vector<SmapsEntry>& earlier, std::vector<char>& smaps_known);

// True when /proc/PID is gone or the process is a zombie (its memory is gone).
bool processExited(pid_t pid);

} // namespace procsnap

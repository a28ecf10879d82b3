// Reading /proc files. They report size 0 and are generated as they are read, so they are
// read to EOF in a loop; maps and smaps are re-read when they changed during the read.
#pragma once

#include "common/proc/smaps.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// Largest /proc file we read: smaps of a process with the default 65530 mappings at
// ~1 KiB per entry is ~64 MiB; more than that is not a /proc file we understand.
inline constexpr size_t kMaxProcFileSize = size_t{256} << 20;

// How often maps/smaps are re-read when a read was torn before giving up. A torn read needs
// the target to change its mappings during the read, so a few tries nearly always suffice.
inline constexpr int kMaxTornReadRetries = 8;

// Reads a whole file. ENOENT -> NotFound, ESRCH -> ProcessGone, EACCES/EPERM ->
// PermissionDenied, a file over max_size -> Unsupported, anything else -> Io.
Result<std::string> readProcFile(const std::string& path, size_t max_size = kMaxProcFileSize);
Result<std::vector<std::byte>> readProcFileBytes(const std::string& path,
                                                 size_t max_size = kMaxProcFileSize);

// "/proc/PID/NAME".
std::string procPath(pid_t pid, std::string_view name);

// Reads and parses /proc/PID/maps (smaps), re-reading on ErrorCode::TornRead up to
// kMaxTornReadRetries times. A missing /proc/PID is ProcessGone.
Result<std::vector<MapsEntry>> readMapsStable(pid_t pid);
Result<std::vector<SmapsEntry>> readSmapsStable(pid_t pid);

} // namespace procsnap

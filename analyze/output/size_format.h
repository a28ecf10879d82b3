// How text output spells sizes: one unit per column, like pmap (KiB), ls -h (K/M/G) or exact
// bytes. JSON never uses these: its sizes are numbers in the unit their key names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace procsnap::analyze {

enum class SizeUnit { KiB, Human, Bytes };

// "KiB", "K/M/G", "bytes": for a header that names the unit.
std::string_view unitName(SizeUnit unit);

// KiB: bytes / 1024, rounded up (a partial KiB is still memory); Bytes: exact; Human: "0",
// "512B", "4K", "1.5M", "12M", "32G" (one decimal below 10 units, like ls -h).
std::string formatSize(uint64_t bytes, SizeUnit unit);

} // namespace procsnap::analyze

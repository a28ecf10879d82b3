// What a mapping is, shared by capture (filters, policy) and analyze (views, totals).
#pragma once

#include "common/proc/maps.h"

#include <optional>
#include <span>
#include <string_view>

namespace procsnap {

enum class RegionKind : uint8_t {
  Text,        // executable mapping of an ELF module
  Rodata,      // read-only mapping of an ELF module (headers, .rodata, .eh_frame, relro)
  Data,        // writable file-backed mapping of an ELF module (.data, start of .bss)
  Bss,         // anonymous mapping right after a module's data: the rest of .bss
  Heap,        // [heap]
  MainStack,   // [stack]
  ThreadStack, // anonymous mapping holding a thread's stack pointer
  Vdso,        // [vdso]
  Vvar,        // [vvar], [vvar_vclock]
  Vsyscall,    // [vsyscall]
  PrivateAnon, // other private anonymous memory (malloc arenas, mmap, [anon:name])
  SharedAnon,  // shared anonymous memory: MAP_SHARED|MAP_ANONYMOUS, memfd, SysV shm
  FileBacked,  // a mapped file that is not an ELF module's code or data
  Guard,       // no permissions (---p): guard pages and reservations
};

inline constexpr int kRegionKindCount = 14;

std::string_view toString(RegionKind kind); // "text", "rodata", ..., "thread-stack", ...
std::optional<RegionKind> regionKindFromString(std::string_view name);

// Classifies every entry. thread_stack_pointers are the threads' SP values (empty when not
// known); an anonymous mapping holding one is a thread stack (the main thread's is [stack]).
std::vector<RegionKind> classifyRegions(std::span<const MapsEntry> maps,
                                        std::span<const uint64_t> thread_stack_pointers = {});

} // namespace procsnap

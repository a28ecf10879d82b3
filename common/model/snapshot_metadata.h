// What an archive says about the process besides its memory: domain types, kept apart from
// the on-disk encoding (a JSON document, see docs/FORMAT.md and metadata_codec.h).
#pragma once

#include "common/model/region_kind.h"
#include "common/proc/smaps.h"
#include "common/proc/status.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace procsnap {

// Why a page range holds what it holds. Only Stored ranges have bytes in the archive; every
// other state reads as zeros and says why.
enum class PageState : uint8_t {
  Stored,           // bytes are in chunks
  Zero,             // read, and every byte was zero
  NotPresent,       // pagemap: not present (never touched, or the shared zero page)
  ExcludedDontDump, // MADV_DONTDUMP ("dd" in VmFlags)
  ExcludedFilter,   // coredump_filter, --filter or --exclude
  Unreadable,       // the kernel refused to read it ([vvar], [vsyscall], I/O error)
  Lost,             // the target exited or unmapped it before it was read
  Redacted,         // --redact removed the contents (a manifest entry says where)
  // Not in the source (an ELF core leaves out file-backed pages): read from the module's file
  // on this host, whose build-id matches the one in the source's memory. Never written to
  // archives by capture; holds bytes like Stored.
  FromFile,
};

// States whose runs read as real bytes (Stored, FromFile); every other state reads as zeros.
inline bool holdsBytes(PageState state) {
  return state == PageState::Stored || state == PageState::FromFile;
}

std::string_view toString(PageState state); // "stored", "zero", "not-present", ...
std::optional<PageState> pageStateFromString(std::string_view name);

struct PageRun {
  uint64_t start = 0; // absolute address, page aligned
  uint64_t end = 0;   // exclusive
  PageState state = PageState::Stored;
};

struct RegionRecord {
  SmapsEntry smaps; // smaps.map is the maps line; fields empty when smaps was unreadable
  RegionKind kind = RegionKind::PrivateAnon;
  std::vector<PageRun> pages; // sorted, disjoint, covering [start, end) exactly
  std::string note;           // why something could not be read, when it could not

  const MapsEntry& map() const { return smaps.map; }
};

// One register set as PTRACE_GETREGSET returned it (NT_PRSTATUS = 1, NT_PRFPREG = 2,
// NT_X86_XSTATE = 0x202, ...), raw, with its size.
struct RegisterSet {
  uint32_t note_type = 0;
  std::vector<std::byte> bytes;
};

struct ThreadRecord {
  int32_t tid = 0;
  std::string name; // /proc/PID/task/TID/comm
  std::string state;
  std::vector<RegisterSet> register_sets;
  uint64_t pc = 0; // from NT_PRSTATUS, for convenience
  uint64_t sp = 0;
};

struct ModuleRecord {
  std::string path;            // as in maps
  std::string build_id;        // lowercase hex, empty when none
  std::string build_id_memory; // build-id read from the target's memory, empty when not found
  uint64_t file_size = 0;
  uint64_t load_address = 0; // lowest mapping of the file
  std::string source;        // where the bytes came from: "map_files", "path"
  bool embedded = false;     // the whole file is in the archive
  bool deleted = false;
};

struct ProcessInfo {
  int32_t pid = 0;
  int32_t ppid = 0;
  std::string comm;
  std::string exe;
  std::string cwd;
  std::vector<std::string> cmdline;
  std::vector<std::string> environ; // only with --environ
  bool has_environ = false;
  std::vector<std::pair<std::string, std::string>> status; // /proc/PID/status, all fields
  std::vector<AuxvEntry> auxv;
  std::string limits; // /proc/PID/limits as text
  uint32_t coredump_filter = 0x33;
  std::array<uint32_t, 4> uid{};
  std::array<uint32_t, 4> gid{};
  std::vector<uint32_t> groups;
};

struct HostInfo {
  std::string hostname;
  std::string kernel_release;
  std::string machine; // "x86_64"
  uint32_t page_size = 4096;
  std::string boot_id;
};

struct CaptureStats {
  double pause_seconds = 0; // first thread stopped to last thread resumed
  std::map<std::string, double>
      phase_seconds;           // "freeze", "metadata", "copy", "compress", "write", ...
  uint64_t bytes_copied = 0;   // read from the target
  uint64_t bytes_recopied = 0; // --precopy: copied again while frozen (written meanwhile)
  uint64_t bytes_stored = 0;   // uncompressed bytes in chunks
  uint64_t bytes_compressed = 0;
  std::map<std::string, uint64_t> bytes_skipped; // by PageState name
  uint32_t threads = 0;
  uint32_t chunks = 0;
  bool compressed_while_frozen = false; // the --max-buffer budget was exceeded
};

struct SnapshotMetadata {
  std::string tool_version;
  std::string capture_time; // UTC, ISO 8601 with 'Z'
  bool partial = false;
  std::string partial_reason;
  ProcessInfo process;
  HostInfo host;
  std::vector<RegionRecord> regions; // sorted by start
  std::vector<ThreadRecord> threads; // main thread first
  std::vector<ModuleRecord> modules;
  CaptureStats stats;
  std::vector<std::string> warnings;
};

} // namespace procsnap

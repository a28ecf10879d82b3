// Module sketches for every ELF file the target maps. Collecting happens in two steps so the
// target's pause stays short: open() runs while the target is frozen and only opens each
// distinct file through /proc/PID/map_files (which yields the mapped file even when it was
// deleted or replaced on disk, and stays valid after the target exits); collect() reads and
// sketches the files after the thaw.
#pragma once

#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

namespace procsnap {

struct ModuleCollectOptions {
  bool embed_binaries = false;
};

// Reads target memory from the copied chunks: fills out and returns true when every byte of
// [address, address + out.size()) was copied.
using CopiedMemoryReader = std::function<bool(uint64_t address, std::span<std::byte> out)>;

class ModuleCollector final {
public:
  // Opens every distinct ELF file among regions' file-backed mappings (distinct by device
  // and inode), preferring /proc/PID/map_files/START-END over the path. Files that cannot be
  // opened or are not ELF are skipped (noted in warnings() when unexpected).
  static ModuleCollector open(pid_t pid, std::span<const RegionRecord> regions);

  ModuleCollector(ModuleCollector&& other) noexcept;
  ModuleCollector& operator=(ModuleCollector&& other) noexcept;
  ModuleCollector(const ModuleCollector&) = delete;
  ModuleCollector& operator=(const ModuleCollector&) = delete;
  ~ModuleCollector(); // closes the files

  size_t size() const { return modules_.size(); }

  // Sketches (or, with embed_binaries, embeds whole, deduplicated by build-id) every opened
  // file, and fills build_id_memory from the target's copy of the module's notes when its
  // first page was copied. Closes the files. Sketch failures become warnings.
  std::vector<ModuleSketch> collect(const ModuleCollectOptions& options,
                                    const CopiedMemoryReader& memory);

  const std::vector<std::string>& warnings() const { return warnings_; }

private:
  struct OpenModule {
    int fd = -1;
    ModuleRecord base; // path, load_address, source, deleted
  };

  ModuleCollector() = default;
  void closeAll();

  std::vector<OpenModule> modules_;
  std::vector<std::string> warnings_;
};

// The build-id (lowercase hex) in the notes of an ELF image mapped at load_address, read
// through memory; empty when the headers or notes are not readable there.
std::string buildIdFromMemory(uint64_t load_address, const CopiedMemoryReader& memory);

} // namespace procsnap

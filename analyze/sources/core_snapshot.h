// Snapshot over an ELF core file (the kernel's, gdb's gcore, or export-core), plain or
// compressed (analyze/sources/compressed_source.h). The core is memory-mapped; metadata comes from
// its program headers and notes:
//   regions   PT_LOAD, with paths and file offsets from NT_FILE; mappings NT_FILE lists but no
//             PT_LOAD covers (gcore leaves out never-written file mappings) become regions
//             without stored bytes; [heap], [stack], [vdso], [vvar], [vsyscall] are inferred
//             (a core does not name anonymous mappings);
//   pages     p_filesz bytes are Stored; p_memsz beyond p_filesz is ExcludedFilter (the dumper
//             left it out), or FromFile when the module's file on this host (original path,
//             --sysroot, DIR/.build-id/xx/rest) has the build-id found in the core's memory;
//   threads   NT_PRSTATUS (pr_reg kept raw as the NT_PRSTATUS register set) with the
//             NT_FPREGSET / NT_X86_XSTATE / ... notes that follow it, main thread first;
//   process   NT_PRPSINFO, NT_AUXV; modules: NT_FILE paths with the build-id read from memory.
// Damage never crashes: a PT_LOAD past the end of the file is kept up to the end (the rest is
// Lost, the snapshot partial), damaged notes give warnings, absurd tables are refused.
#pragma once

#include "analyze/model/snapshot.h"
#include "analyze/sources/compressed_source.h"

#include <memory>
#include <string>
#include <vector>

namespace procsnap::analyze {

class CoreSnapshot final : public Snapshot {
public:
  // Opens path (decompressing it when needed). Errors: "cannot open 'PATH': ...".
  static llvm::Expected<std::unique_ptr<CoreSnapshot>> open(llvm::StringRef path,
                                                            const OpenOptions& options);
  // Parses a core already in memory (tests, and open()).
  static llvm::Expected<std::unique_ptr<CoreSnapshot>>
  create(std::string path, std::unique_ptr<llvm::MemoryBuffer> core, Compression compression,
         const OpenOptions& options);
  ~CoreSnapshot() override;
  CoreSnapshot(const CoreSnapshot&) = delete;
  CoreSnapshot& operator=(const CoreSnapshot&) = delete;

  Compression compression() const { return compression_; }
  // The file the FromFile pages of metadata().regions[region_index] are read from, or "".
  llvm::StringRef contentsFile(size_t region_index) const;

  // Interface:
  const SnapshotMetadata& metadata() const override { return metadata_; }
  llvm::StringRef sourceKind() const override { return "core"; }
  llvm::StringRef sourcePath() const override { return path_; }
  llvm::Expected<ReadResult> read(uint64_t address,
                                  llvm::MutableArrayRef<uint8_t> out) const override;
  std::vector<StoredExtent> storedExtents(uint64_t start, uint64_t end) const override;
  // A core carries no module images: the locator finds the files on this host.
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
  moduleImage(size_t module_index) const override;

private:
  // Where the bytes of one region are, parallel to metadata_.regions.
  struct RegionSource {
    uint64_t core_offset = 0;  // offset in the core of the region's first byte
    uint64_t stored_bytes = 0; // bytes from the region start that the core holds
    int contents_file = -1;    // index into contents_files_ for FromFile pages, or -1
    uint64_t file_offset = 0;  // offset in that file of the region's first byte
  };
  struct ContentsFile {
    std::string path;
    std::unique_ptr<llvm::MemoryBuffer> bytes;
  };
  class Parser;

  CoreSnapshot() = default;

  std::string path_;
  Compression compression_ = Compression::None;
  std::unique_ptr<llvm::MemoryBuffer> core_;
  SnapshotMetadata metadata_;
  std::vector<RegionSource> sources_;
  std::vector<ContentsFile> contents_files_;
};

} // namespace procsnap::analyze

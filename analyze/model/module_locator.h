// Finds the ELF data of each module of a snapshot, in this order:
//   1. the snapshot's own image: the embedded binary ("embedded") or module sketch ("sketch");
//   2. the original path, when its build-id matches ("path");
//   3. --sysroot DIR + the original path, build-id checked ("sysroot");
//   4. debug directories by build-id: DIR/.build-id/xx/rest.debug ("debug-dir").
// Separately it looks for a file with DWARF (for file:line): the found file when it has
// .debug_info, else DIR/.build-id/xx/rest.debug in the debug directories.
// Results are cached per file: module records naming the same file (path, build-id and size)
// share one located module, so each file is located and parsed once however many records
// name it. A file that cannot be found gives one warning and nullptr; commands print "<?>".
#pragma once

#include "analyze/model/elf_module.h"
#include "analyze/model/snapshot.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct LocatorOptions {
  std::string sysroot;                 // "" = none
  std::vector<std::string> debug_dirs; // searched in order; empty = {kDefaultDebugDir}
  bool use_original_paths = true;      // false in tests that must not see the host's files
};

inline constexpr const char* kDefaultDebugDir = "/usr/lib/debug";

struct LocatedModule {
  std::unique_ptr<ElfModule> elf; // never null in a LocatedModule
  std::string where;              // "embedded", "sketch", "path", "sysroot", "debug-dir"
  std::string file_path;          // on disk when found there, else ""
  // A file on disk with DWARF for this module (may equal file_path), else "".
  std::string debug_path;
  // The separate debug file parsed for its full .symtab, when elf has only .dynsym (stripped
  // system libraries); null otherwise.
  std::unique_ptr<ElfModule> debug_elf;

  // The symbol naming vaddr, from the debug file's full table first.
  const ElfSymbol* symbolAt(uint64_t vaddr) const;
  // Symbols named name from both tables, without duplicates.
  std::vector<const ElfSymbol*> findSymbols(llvm::StringRef name) const;
};

class ModuleLocator final {
public:
  using WarningHandler = std::function<void(llvm::StringRef)>;

  // snapshot must outlive the locator.
  ModuleLocator(const Snapshot& snapshot, LocatorOptions options, WarningHandler warn = {});
  ModuleLocator(const ModuleLocator&) = delete;
  ModuleLocator& operator=(const ModuleLocator&) = delete;
  ~ModuleLocator();

  // The ELF data of metadata().modules[module_index], or nullptr (after one warning).
  const LocatedModule* locate(size_t module_index);
  const LocatorOptions& options() const { return options_; }

private:
  std::unique_ptr<LocatedModule> find(size_t module_index);
  std::string findDebugFile(const std::string& build_id) const;

  const Snapshot& snapshot_;
  LocatorOptions options_;
  WarningHandler warn_;
  std::map<size_t, const LocatedModule*> by_index_;               // null: not found
  std::map<std::string, std::unique_ptr<LocatedModule>> by_file_; // by fileKey(); null: not found
};

} // namespace procsnap::analyze

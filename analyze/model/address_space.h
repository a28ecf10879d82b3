// The address-space model of a snapshot, built once: every region, the module it belongs to,
// the module's load bias, and the module's bytes at runtime addresses split into labelled
// half-open spans (bloaty's RangeMap): a section, or a bracketed synthetic label for what no
// section claims ("[ELF header]", "[program headers]", "[padding]", "[section headers]",
// "[unmapped]", "[beyond file]", "[non-alloc]"), so that the spans of a module's regions add
// up to the regions' sizes exactly. .bss spans the tail of the file-backed rw mapping and the
// anonymous mapping after it; both get their share of ".bss".
#pragma once

#include "analyze/model/module_locator.h"
#include "analyze/model/snapshot.h"

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct AddressRange {
  uint64_t start = 0;
  uint64_t end = 0; // exclusive

  uint64_t size() const { return end - start; }
  bool contains(uint64_t address) const { return address >= start && address < end; }
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

// A labelled stretch of a module's mapped bytes, at runtime addresses.
struct SectionSpan {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  std::string label; // section name, or a bracketed synthetic label
  bool synthetic = false;
  int section_index = -1; // into ElfModule::sections() when !synthetic
  int region_index = -1;  // the region holding the span (spans never cross regions)

  uint64_t size() const { return end - start; }
};

struct LoadedModule {
  size_t module_index = 0;                // into metadata().modules
  std::string path;                       // as mapped
  std::string name;                       // file name without directories ("libc.so.6")
  const LocatedModule* located = nullptr; // null: ELF data not found (names print "<?>")
  std::optional<int64_t> load_bias;       // runtime = link-time + bias; nullopt when unknown
  std::vector<int> region_indices;        // file mappings plus the .bss mapping after them
  std::vector<SectionSpan> spans;         // sorted, disjoint, covering every region byte
  std::optional<AddressRange> bss;        // .bss at runtime, when the module has one

  const ElfModule* elf() const { return located ? located->elf.get() : nullptr; }
  // Runtime address of a link-time address (bias applied); nullopt without a bias.
  std::optional<uint64_t> runtime(uint64_t vaddr) const;
};

// What one address is, as far as the snapshot can tell. Empty strings mean unknown.
struct AddressInfo {
  const RegionRecord* region = nullptr; // null: unmapped
  int region_index = -1;
  int module_index = -1; // into AddressSpace::modules(), -1 outside modules
  std::string module_name;
  std::string segment; // "LOAD[2] r-x" (program header index among all headers)
  std::string section; // ".text", or a synthetic label
  std::string symbol;  // demangled
  uint64_t symbol_offset = 0;
  uint64_t symbol_address = 0; // runtime
  uint64_t symbol_size = 0;
  std::optional<uint64_t> file_vaddr; // link-time address (runtime - bias)
};

struct SymbolLocation {
  int module_index = -1; // into AddressSpace::modules()
  std::string name;
  uint64_t address = 0; // runtime
  uint64_t size = 0;
  bool is_function = false;
};

class AddressSpace final {
public:
  // Locates every module through locator (which must outlive the result) and computes
  // biases and spans. Modules that cannot be found still get regions and "<?>" spans.
  static llvm::Expected<AddressSpace> build(const Snapshot& snapshot, ModuleLocator& locator);

  AddressInfo lookup(uint64_t address) const;

  const std::vector<LoadedModule>& modules() const { return modules_; }
  // Index into modules() of the module owning region region_index, or -1.
  int moduleOfRegion(int region_index) const;
  // By full path, file name ("libc.so.6") or, when unambiguous, a prefix of the file name
  // ("libc"); "exe" or "main" names the main executable. -1 when none.
  int findModule(llvm::StringRef name) const;

  // "symbol" or "module!symbol" (demangled or raw name), main executable first.
  std::vector<SymbolLocation> findSymbol(llvm::StringRef name) const;
  // A section of a module at runtime addresses, e.g. ("libc.so.6", ".data").
  std::optional<AddressRange> findSection(llvm::StringRef module, llvm::StringRef section) const;

  const Snapshot& snapshot() const { return *snapshot_; }

private:
  AddressSpace() = default;

  const Snapshot* snapshot_ = nullptr;
  std::vector<LoadedModule> modules_;
  std::vector<int> module_of_region_; // per region: index into modules_, or -1
};

} // namespace procsnap::analyze

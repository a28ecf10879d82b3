// One ELF file (executable, shared object, module sketch or separate debug file) read through
// llvm::object: program headers, sections, symbols (.symtab and .dynsym, demangled) and the
// build-id, in plain structs so the rest of analyze/ needs no libObject.
// Never include <elf.h> next to this header: its macros break LLVM's ELF headers.
#pragma once

#include "common/proc/maps.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/ErrorOr.h>
#include <llvm/Support/MemoryBuffer.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct ElfSegment {
  uint32_t type = 0;  // PT_LOAD = 1, PT_DYNAMIC = 2, PT_NOTE = 4, PT_GNU_RELRO, ...
  uint32_t flags = 0; // PF_X = 1, PF_W = 2, PF_R = 4
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
  uint64_t align = 0;

  bool isLoad() const { return type == 1; }
  std::string permissions() const; // "r-x"
};

struct ElfSection {
  std::string name;
  uint32_t type = 0;    // SHT_PROGBITS = 1, SHT_NOBITS = 8, ...
  uint64_t flags = 0;   // SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4, ...
  uint64_t address = 0; // sh_addr (link-time virtual address)
  uint64_t size = 0;
  uint64_t offset = 0; // sh_offset

  bool isAlloc() const { return (flags & 2) != 0; }
  bool isNoBits() const { return type == 8; }
  bool isTls() const { return (flags & 0x400) != 0; }
};

struct ElfSymbol {
  std::string name;     // demangled
  std::string raw_name; // as stored
  uint64_t address = 0; // st_value (link-time virtual address)
  uint64_t size = 0;
  bool is_function = false;
  bool is_object = false; // STT_OBJECT / STT_TLS / STT_COMMON: data
};

// Where the file's own headers lie (file offsets), for the bracketed labels of bytes no section
// claims.
struct ElfFileLayout {
  uint64_t header_size = 0; // e_ehsize
  uint64_t program_headers_offset = 0;
  uint64_t program_headers_size = 0;
  uint64_t section_headers_offset = 0;
  uint64_t section_headers_size = 0;
};

class ElfModule final {
public:
  // Parses buffer (ELF32/64, little-endian). The module owns the buffer. Damaged tables give
  // warnings (warnings()) and empty lists, not an error; only a file that is not ELF at all
  // is an error.
  static llvm::Expected<std::unique_ptr<ElfModule>>
  create(std::unique_ptr<llvm::MemoryBuffer> buffer);
  ~ElfModule();
  ElfModule(const ElfModule&) = delete;
  ElfModule& operator=(const ElfModule&) = delete;

  const llvm::object::ObjectFile& object() const { return *object_; }
  llvm::StringRef name() const; // the buffer identifier
  llvm::MemoryBufferRef buffer() const;

  uint16_t elfType() const { return elf_type_; } // ET_EXEC = 2, ET_DYN = 3
  bool isPositionIndependent() const { return elf_type_ == 3; }
  const std::string& buildId() const { return build_id_; } // lowercase hex, "" when none
  bool hasDebugInfo() const { return has_debug_info_; }    // a .debug_info section with bytes
  bool hasSymtab() const { return has_symtab_; }           // a full .symtab, not only .dynsym

  const ElfFileLayout& layout() const { return layout_; }
  const std::vector<ElfSegment>& segments() const { return segments_; } // file order
  const std::vector<ElfSection>& sections() const { return sections_; } // file order, no index 0
  // Sorted by address, then size descending; undefined and zero-address entries are dropped,
  // duplicates (same address and name from .symtab and .dynsym) kept once.
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The allocated section containing vaddr (NOBITS included, TLS excluded), or nullptr.
  const ElfSection* sectionAt(uint64_t vaddr) const;
  // The symbol naming vaddr: the innermost one with address <= vaddr < address + size;
  // otherwise the nearest preceding function of size 0; nullptr when none.
  const ElfSymbol* symbolAt(uint64_t vaddr) const;
  // Symbols named name (demangled or raw), in address order.
  std::vector<const ElfSymbol*> findSymbols(llvm::StringRef name) const;
  const ElfSection* findSection(llvm::StringRef name) const;

  // Load bias (runtime address minus link-time address) from the module's mappings: the
  // mapping whose file offset covers a PT_LOAD's p_offset gives
  //   bias = map.start + (p_offset - map.offset) - p_vaddr.
  // Non-PIE executables get 0 when their mappings agree. nullopt when no mapping matches.
  std::optional<int64_t> loadBias(llvm::ArrayRef<MapsEntry> mappings) const;

private:
  ElfModule() = default;

  std::unique_ptr<llvm::MemoryBuffer> buffer_;
  std::unique_ptr<llvm::object::ObjectFile> object_;
  uint16_t elf_type_ = 0;
  std::string build_id_;
  bool has_debug_info_ = false;
  bool has_symtab_ = false;
  ElfFileLayout layout_;
  std::vector<ElfSegment> segments_;
  std::vector<ElfSection> sections_;
  // Indices of the sections that occupy addresses (allocated, not TLS NOBITS, not empty),
  // sorted by address, for binary search.
  std::vector<uint32_t> sections_by_address_;
  std::vector<ElfSymbol> symbols_;
  std::vector<std::string> warnings_;
};

// Reads a file on this host named by a snapshot (a module path, a build-id link): only a
// regular file, because a hostile snapshot may name /dev/zero (endless) or a FIFO (blocks).
llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> readRegularFile(llvm::StringRef path);

// What the locator needs to know of a file on disk, without parsing its symbols.
struct ElfFileSummary {
  std::string build_id; // lowercase hex, "" when none
  bool has_debug_info = false;
  bool has_symtab = false;
};
llvm::Expected<ElfFileSummary> summarizeElfFile(llvm::StringRef path);
// The build-id note of an ELF file on disk.
llvm::Expected<std::string> readBuildId(llvm::StringRef path);

} // namespace procsnap::analyze

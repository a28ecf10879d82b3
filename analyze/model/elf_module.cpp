#include "analyze/model/elf_module.h"

#include <llvm/Support/FileSystem.h>

#include <llvm/BinaryFormat/ELF.h>
#include <llvm/Demangle/Demangle.h>
#include <llvm/Object/BuildID.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Support/Format.h>

#include <algorithm>
#include <set>
#include <utility>

namespace procsnap::analyze {

namespace {

// Symbols looked at backwards from an address before giving up on finding one that contains
// it: bounds the cost of a lookup in a huge table (containing symbols are close by).
constexpr size_t kMaxSymbolBackwardScan = 4096;
// Section headers and symbols accepted from one file: a damaged header cannot make us
// allocate without bound (the largest libraries have a few hundred thousand symbols).
constexpr size_t kMaxSections = 1 << 16;
constexpr size_t kMaxSymbols = 1 << 22;
constexpr uint64_t kPageSize = 4096;

std::string toHexString(llvm::ArrayRef<uint8_t> bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  for (uint8_t byte : bytes) {
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text;
}

struct Parsed {
  uint16_t elf_type = 0;
  ElfFileLayout layout;
  std::vector<ElfSegment> segments;
  std::vector<ElfSection> sections;
  std::vector<ElfSymbol> symbols;
  std::vector<std::string> warnings;
};

template <class ELFT> void parseElf(const llvm::object::ELFObjectFile<ELFT>& object, Parsed& out) {
  const llvm::object::ELFFile<ELFT>& file = object.getELFFile();
  const auto& header = file.getHeader();
  out.elf_type = header.e_type;
  out.layout.header_size = header.e_ehsize;
  out.layout.program_headers_offset = header.e_phoff;
  out.layout.program_headers_size = uint64_t{header.e_phnum} * header.e_phentsize;
  out.layout.section_headers_offset = header.e_shoff;
  out.layout.section_headers_size = uint64_t{header.e_shnum} * header.e_shentsize;

  if (auto headers = file.program_headers()) {
    for (const auto& header : *headers) {
      out.segments.push_back({static_cast<uint32_t>(header.p_type),
                              static_cast<uint32_t>(header.p_flags), header.p_offset,
                              header.p_vaddr, header.p_filesz, header.p_memsz, header.p_align});
    }
  } else {
    out.warnings.push_back("program headers: " + llvm::toString(headers.takeError()));
  }

  auto sections = file.sections();
  if (!sections) {
    out.warnings.push_back("section headers: " + llvm::toString(sections.takeError()));
    return;
  }
  if (sections->size() > kMaxSections) {
    out.warnings.push_back("section headers: " + std::to_string(sections->size()) +
                           " sections is more than the limit");
    return;
  }
  for (const auto& section : sections->drop_front(sections->empty() ? 0 : 1)) {
    ElfSection info;
    if (auto name = file.getSectionName(section)) {
      info.name = name->str();
    } else {
      out.warnings.push_back("section name: " + llvm::toString(name.takeError()));
      info.name = "<?>";
    }
    info.type = section.sh_type;
    info.flags = section.sh_flags;
    info.address = section.sh_addr;
    info.size = section.sh_size;
    info.offset = section.sh_offset;
    out.sections.push_back(std::move(info));
  }

  for (const auto& section : *sections) {
    if (section.sh_type != llvm::ELF::SHT_SYMTAB && section.sh_type != llvm::ELF::SHT_DYNSYM)
      continue;
    auto symbols = file.symbols(&section);
    if (!symbols) {
      out.warnings.push_back("symbol table: " + llvm::toString(symbols.takeError()));
      continue;
    }
    auto strings = file.getStringTableForSymtab(section, *sections);
    if (!strings) {
      out.warnings.push_back("symbol names: " + llvm::toString(strings.takeError()));
      continue;
    }
    for (const auto& symbol : symbols->drop_front(symbols->empty() ? 0 : 1)) {
      if (out.symbols.size() >= kMaxSymbols) {
        out.warnings.push_back("more symbols than the limit: the rest are ignored");
        return;
      }
      uint8_t type = symbol.getType();
      if (symbol.st_shndx == llvm::ELF::SHN_UNDEF || type == llvm::ELF::STT_SECTION ||
          type == llvm::ELF::STT_FILE || type == llvm::ELF::STT_TLS || symbol.st_value == 0)
        continue;
      auto name = symbol.getName(*strings);
      if (!name) {
        llvm::consumeError(name.takeError()); // a broken name drops one symbol, not the table
        continue;
      }
      if (name->empty() || name->starts_with("$"))
        continue; // mapping symbols ($x, $d) name no code
      ElfSymbol info;
      info.raw_name = name->str();
      info.name = llvm::demangle(info.raw_name);
      info.address = symbol.st_value;
      info.size = symbol.st_size;
      info.is_function = type == llvm::ELF::STT_FUNC || type == llvm::ELF::STT_GNU_IFUNC;
      info.is_object = type == llvm::ELF::STT_OBJECT || type == llvm::ELF::STT_COMMON;
      out.symbols.push_back(std::move(info));
    }
  }
}

} // namespace

std::string ElfSegment::permissions() const {
  std::string text = "---";
  if (flags & llvm::ELF::PF_R)
    text[0] = 'r';
  if (flags & llvm::ELF::PF_W)
    text[1] = 'w';
  if (flags & llvm::ELF::PF_X)
    text[2] = 'x';
  return text;
}

ElfModule::~ElfModule() = default;

llvm::Expected<std::unique_ptr<ElfModule>>
ElfModule::create(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  if (!buffer)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "no ELF data");
  auto object = llvm::object::ObjectFile::createObjectFile(buffer->getMemBufferRef());
  if (!object)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "'%s' is not a readable ELF file: %s",
        buffer->getBufferIdentifier().str().c_str(), llvm::toString(object.takeError()).c_str());
  std::unique_ptr<ElfModule> module(new ElfModule());
  Parsed parsed;
  if (const auto* elf = llvm::dyn_cast<llvm::object::ELF64LEObjectFile>(object->get())) {
    parseElf(*elf, parsed);
  } else if (const auto* elf32 = llvm::dyn_cast<llvm::object::ELF32LEObjectFile>(object->get())) {
    parseElf(*elf32, parsed);
  } else {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s' is not a little-endian ELF file",
                                   buffer->getBufferIdentifier().str().c_str());
  }
  module->build_id_ = toHexString(llvm::object::getBuildID(object->get()));
  module->buffer_ = std::move(buffer);
  module->object_ = std::move(*object);
  module->elf_type_ = parsed.elf_type;
  module->layout_ = parsed.layout;
  module->segments_ = std::move(parsed.segments);
  module->sections_ = std::move(parsed.sections);
  module->warnings_ = std::move(parsed.warnings);
  for (const ElfSection& section : module->sections_) {
    if (section.name == ".debug_info" && !section.isNoBits() && section.size > 0)
      module->has_debug_info_ = true;
    if (section.type == 2 /* SHT_SYMTAB */ && section.size > 0)
      module->has_symtab_ = true;
  }

  for (size_t i = 0; i < module->sections_.size(); ++i) {
    const ElfSection& section = module->sections_[i];
    if (section.isAlloc() && section.size > 0 && !(section.isTls() && section.isNoBits()))
      module->sections_by_address_.push_back(static_cast<uint32_t>(i));
  }
  std::stable_sort(module->sections_by_address_.begin(), module->sections_by_address_.end(),
                   [&](uint32_t a, uint32_t b) {
                     return module->sections_[a].address < module->sections_[b].address;
                   });

  auto& symbols = parsed.symbols;
  std::stable_sort(symbols.begin(), symbols.end(), [](const ElfSymbol& a, const ElfSymbol& b) {
    if (a.address != b.address)
      return a.address < b.address;
    return a.size > b.size;
  });
  std::set<std::pair<uint64_t, std::string>> seen;
  for (ElfSymbol& symbol : symbols) {
    if (seen.insert({symbol.address, symbol.raw_name}).second)
      module->symbols_.push_back(std::move(symbol));
  }
  return module;
}

llvm::StringRef ElfModule::name() const {
  return buffer_->getBufferIdentifier();
}
llvm::MemoryBufferRef ElfModule::buffer() const {
  return buffer_->getMemBufferRef();
}

const ElfSection* ElfModule::sectionAt(uint64_t vaddr) const {
  auto after = std::upper_bound(
      sections_by_address_.begin(), sections_by_address_.end(), vaddr,
      [&](uint64_t value, uint32_t index) { return value < sections_[index].address; });
  // Allocated sections do not overlap in well-formed files; look back a few in case they do.
  for (int step = 0; step < 8 && after != sections_by_address_.begin(); ++step) {
    --after;
    const ElfSection& section = sections_[*after];
    if (vaddr - section.address < section.size)
      return &section;
  }
  return nullptr;
}

const ElfSymbol* ElfModule::symbolAt(uint64_t vaddr) const {
  auto after =
      std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                       [](uint64_t value, const ElfSymbol& s) { return value < s.address; });
  const ElfSymbol* best = nullptr;
  size_t scanned = 0;
  for (auto it = after; it != symbols_.begin() && scanned < kMaxSymbolBackwardScan; ++scanned) {
    --it;
    const ElfSymbol& symbol = *it;
    if (symbol.size == 0 || vaddr - symbol.address >= symbol.size)
      continue;
    // Innermost first; among equals, a typed symbol over a NOTYPE label.
    bool typed = symbol.is_function || symbol.is_object;
    if (!best || symbol.size < best->size ||
        (symbol.size == best->size && typed && !(best->is_function || best->is_object)))
      best = &symbol;
  }
  if (best || after == symbols_.begin())
    return best;
  // An unsized function label (assembly such as _start) names what follows it up to the next
  // symbol, but only inside its own section.
  const ElfSymbol& previous = *(after - 1);
  if (previous.size == 0 && previous.is_function) {
    const ElfSection* here = sectionAt(vaddr);
    if (here && here == sectionAt(previous.address))
      return &previous;
  }
  return nullptr;
}

std::vector<const ElfSymbol*> ElfModule::findSymbols(llvm::StringRef name) const {
  std::vector<const ElfSymbol*> found;
  for (const ElfSymbol& symbol : symbols_) {
    if (symbol.name == name || symbol.raw_name == name)
      found.push_back(&symbol);
  }
  if (found.empty()) {
    // "foo" also finds the C++ function "foo(int)" and "ns::foo()".
    for (const ElfSymbol& symbol : symbols_) {
      llvm::StringRef demangled = symbol.name;
      size_t paren = demangled.find('(');
      if (paren != llvm::StringRef::npos && demangled.take_front(paren) == name)
        found.push_back(&symbol);
    }
  }
  return found;
}

const ElfSection* ElfModule::findSection(llvm::StringRef name) const {
  for (const ElfSection& section : sections_) {
    if (section.name == name)
      return &section;
  }
  return nullptr;
}

std::optional<int64_t> ElfModule::loadBias(llvm::ArrayRef<MapsEntry> mappings) const {
  for (const ElfSegment& segment : segments_) {
    if (!segment.isLoad() || segment.filesz == 0)
      continue;
    uint64_t page_offset = segment.offset & ~(kPageSize - 1);
    for (const MapsEntry& map : mappings) {
      if (map.offset != page_offset || map.path.empty() || map.isPseudo())
        continue;
      uint64_t runtime = map.start + (segment.offset - map.offset);
      return static_cast<int64_t>(runtime - segment.vaddr);
    }
  }
  return std::nullopt;
}

llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> readRegularFile(llvm::StringRef path) {
  // The check and the read race with a rename, which only a local user could win, and the
  // worst outcome is the read this check avoids for hostile snapshot contents.
  llvm::sys::fs::file_status status;
  if (std::error_code error = llvm::sys::fs::status(path, status))
    return error;
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return std::make_error_code(std::errc::invalid_argument);
  return llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
}

llvm::Expected<ElfFileSummary> summarizeElfFile(llvm::StringRef path) {
  auto buffer = readRegularFile(path);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read '%s': %s", path.str().c_str(),
                                   buffer.getError().message().c_str());
  auto object = llvm::object::ObjectFile::createObjectFile((*buffer)->getMemBufferRef());
  if (!object)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "'%s' is not ELF: %s",
                                   path.str().c_str(), llvm::toString(object.takeError()).c_str());
  ElfFileSummary summary;
  summary.build_id = toHexString(llvm::object::getBuildID(object->get()));
  const auto* elf = llvm::dyn_cast<llvm::object::ELFObjectFileBase>(object->get());
  if (!elf)
    return summary;
  for (const llvm::object::ELFSectionRef section : elf->sections()) {
    if (section.getType() == llvm::ELF::SHT_SYMTAB && section.getSize() > 0)
      summary.has_symtab = true;
    if (section.getType() == llvm::ELF::SHT_NOBITS || section.getSize() == 0)
      continue;
    auto name = section.getName();
    if (!name) {
      llvm::consumeError(name.takeError()); // an unnamed section cannot be .debug_info
      continue;
    }
    if (*name == ".debug_info")
      summary.has_debug_info = true;
  }
  return summary;
}

llvm::Expected<std::string> readBuildId(llvm::StringRef path) {
  auto buffer = readRegularFile(path);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read '%s': %s", path.str().c_str(),
                                   buffer.getError().message().c_str());
  auto object = llvm::object::ObjectFile::createObjectFile((*buffer)->getMemBufferRef());
  if (!object)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "'%s' is not ELF: %s",
                                   path.str().c_str(), llvm::toString(object.takeError()).c_str());
  return toHexString(llvm::object::getBuildID(object->get()));
}

} // namespace procsnap::analyze

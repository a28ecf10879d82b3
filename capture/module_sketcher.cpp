#include "capture/module_sketcher.h"

#include "common/util/text_scan.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {

namespace {

// A build-id is a hash: 20 bytes (sha1) by default, 16 (md5, uuid) or 32 (sha256) otherwise.
// A longer descriptor is not a build-id we can use as a key.
constexpr uint32_t kMaxBuildIdBytes = 64;

// The note name of GNU notes, with its terminating NUL as namesz counts it.
constexpr char kGnuNoteName[] = "GNU";

// Whether [offset, offset + length) lies inside a file of file_size bytes, without overflow.
bool fitsInFile(uint64_t offset, uint64_t length, uint64_t file_size) {
  return offset <= file_size && length <= file_size - offset;
}

uint64_t alignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// ELF header, program header and section header fields, widened from either class.
struct ElfHeader {
  bool is64 = true;
  size_t header_size = 0; // sizeof the class's Ehdr, not e_ehsize (which a file may lie about)
  uint64_t phoff = 0, shoff = 0;
  uint32_t phentsize = 0, shentsize = 0;
  uint64_t phnum = 0, shnum = 0;
  uint32_t shstrndx = 0;
};

struct Segment {
  uint32_t type = 0;
  uint64_t offset = 0, filesz = 0, align = 0;
};

struct Section {
  uint32_t name = 0, type = 0, link = 0, info = 0;
  uint64_t offset = 0, size = 0, addralign = 0;
};

template <typename Struct> Struct loadStruct(const std::byte* bytes) {
  Struct value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

// Reads an ELF file through an fd with pread, never past its size.
class ElfFileReader final {
public:
  ElfFileReader(int fd, uint64_t size) : fd_(fd), size_(size) {}

  uint64_t size() const { return size_; }

  Result<std::vector<std::byte>> read(uint64_t offset, uint64_t length,
                                      std::string_view what) const {
    if (!fitsInFile(offset, length, size_))
      return Error::make(ErrorCode::Malformed, std::string(what) + " at " + hexString(offset) +
                                                   " (" + hexString(length) +
                                                   " bytes) extends past the end of the file (" +
                                                   hexString(size_) + " bytes)");
    std::vector<std::byte> bytes(length);
    uint64_t done = 0;
    while (done < length) {
      ssize_t got =
          ::pread(fd_, bytes.data() + done, length - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR)
          continue;
        return Error::make(ErrorCode::Io, "cannot read " + std::string(what) + " at " +
                                              hexString(offset + done) + ": " + errnoText(errno));
      }
      if (got == 0)
        return Error::make(ErrorCode::Truncated, "file ended at " + hexString(offset + done) +
                                                     " while reading " + std::string(what));
      done += static_cast<uint64_t>(got);
    }
    return bytes;
  }

private:
  int fd_;
  uint64_t size_;
};

template <typename Ehdr> ElfHeader widenHeader(const Ehdr& raw, bool is64) {
  ElfHeader header;
  header.is64 = is64;
  header.header_size = sizeof(Ehdr);
  header.phoff = raw.e_phoff;
  header.shoff = raw.e_shoff;
  header.phentsize = raw.e_phentsize;
  header.shentsize = raw.e_shentsize;
  header.phnum = raw.e_phnum;
  header.shnum = raw.e_shnum;
  header.shstrndx = raw.e_shstrndx;
  return header;
}

template <typename Shdr> Section widenSection(const std::byte* bytes) {
  auto raw = loadStruct<Shdr>(bytes);
  return Section{raw.sh_name,   raw.sh_type, raw.sh_link,     raw.sh_info,
                 raw.sh_offset, raw.sh_size, raw.sh_addralign};
}

template <typename Phdr> Segment widenSegment(const std::byte* bytes) {
  auto raw = loadStruct<Phdr>(bytes);
  return Segment{raw.p_type, raw.p_offset, raw.p_filesz, raw.p_align};
}

Section sectionAt(const ElfHeader& header, const std::byte* entry) {
  return header.is64 ? widenSection<Elf64_Shdr>(entry) : widenSection<Elf32_Shdr>(entry);
}

Segment segmentAt(const ElfHeader& header, const std::byte* entry) {
  return header.is64 ? widenSegment<Elf64_Phdr>(entry) : widenSegment<Elf32_Phdr>(entry);
}

size_t sectionHeaderSize(const ElfHeader& header) {
  return header.is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
}

size_t programHeaderSize(const ElfHeader& header) {
  return header.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
}

Result<ElfHeader> readElfHeader(const ElfFileReader& file) {
  if (file.size() < EI_NIDENT)
    return Error::make(ErrorCode::Truncated,
                       "not an ELF file: only " + std::to_string(file.size()) + " bytes");
  auto ident = file.read(0, EI_NIDENT, "ELF identification");
  PROCSNAP_TRY(ident);
  const auto* id = reinterpret_cast<const unsigned char*>(ident->data());
  if (std::memcmp(id, ELFMAG, SELFMAG) != 0)
    return Error::make(ErrorCode::Malformed, "not an ELF file: bad magic");
  if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
    return Error::make(ErrorCode::Unsupported,
                       "unsupported ELF class " + std::to_string(id[EI_CLASS]));
  if (id[EI_DATA] != ELFDATA2LSB)
    return Error::make(ErrorCode::Unsupported, "unsupported ELF data encoding " +
                                                   std::to_string(id[EI_DATA]) +
                                                   " (only little-endian is supported)");
  const bool is64 = id[EI_CLASS] == ELFCLASS64;
  const size_t header_size = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (file.size() < header_size)
    return Error::make(ErrorCode::Truncated, "ELF header truncated: the file has only " +
                                                 std::to_string(file.size()) + " bytes");
  auto raw = file.read(0, header_size, "ELF header");
  PROCSNAP_TRY(raw);
  ElfHeader header = is64 ? widenHeader(loadStruct<Elf64_Ehdr>(raw->data()), true)
                          : widenHeader(loadStruct<Elf32_Ehdr>(raw->data()), false);

  // Extended numbering (gABI): counts that do not fit the header live in section 0.
  const bool extended =
      header.shnum == 0 || header.shstrndx == SHN_XINDEX || header.phnum == PN_XNUM;
  if (header.shoff != 0 && extended) {
    if (header.shentsize < sectionHeaderSize(header))
      return Error::make(ErrorCode::Malformed,
                         "section header entry size " + std::to_string(header.shentsize) +
                             " is smaller than " + std::to_string(sectionHeaderSize(header)));
    auto first = file.read(header.shoff, sectionHeaderSize(header), "section header 0");
    PROCSNAP_TRY(first);
    Section zero = sectionAt(header, first->data());
    if (header.shnum == 0)
      header.shnum = zero.size;
    if (header.shstrndx == SHN_XINDEX)
      header.shstrndx = zero.link;
    if (header.phnum == PN_XNUM)
      header.phnum = zero.info;
  }
  return header;
}

// Checks that a table of count entries of entsize bytes (at least min_entsize) at offset
// lies inside the file; the check bounds every later allocation by the file size.
Result<void> checkTable(std::string_view what, uint64_t offset, uint64_t count, uint64_t entsize,
                        size_t min_entsize, uint64_t file_size) {
  if (count == 0)
    return success();
  if (entsize < min_entsize)
    return Error::make(ErrorCode::Malformed, std::string(what) + " entry size " +
                                                 std::to_string(entsize) + " is smaller than " +
                                                 std::to_string(min_entsize));
  if (count > file_size / entsize || !fitsInFile(offset, count * entsize, file_size))
    return Error::make(ErrorCode::Malformed, std::string(what) + " (" + std::to_string(count) +
                                                 " entries of " + std::to_string(entsize) +
                                                 " bytes at " + hexString(offset) +
                                                 ") extends past the end of the file (" +
                                                 hexString(file_size) + " bytes)");
  return success();
}

struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool symbols = false; // symbol tables and what goes with them: left out over the budget
};

// Sorts ranges and merges the overlapping and adjacent ones.
std::vector<Range> mergeRanges(std::vector<Range> ranges) {
  std::erase_if(ranges, [](const Range& range) { return range.length == 0; });
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.offset < b.offset; });
  std::vector<Range> merged;
  for (const Range& range : ranges) {
    if (!merged.empty() && range.offset <= merged.back().offset + merged.back().length) {
      Range& last = merged.back();
      uint64_t end = std::max(last.offset + last.length, range.offset + range.length);
      last.length = end - last.offset;
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

// The bytes of [offset, offset + length) when one piece holds them all. Pieces are sorted
// and disjoint: one binary search, so a file of 300,000 notes costs n log n, not n^2.
std::optional<std::span<const std::byte>> bytesInPieces(const ModuleSketch& sketch, uint64_t offset,
                                                        uint64_t length) {
  auto after = std::upper_bound(
      sketch.pieces.begin(), sketch.pieces.end(), offset,
      [](uint64_t value, const ModuleSketch::Piece& piece) { return value < piece.offset; });
  if (after == sketch.pieces.begin())
    return std::nullopt;
  const ModuleSketch::Piece& piece = *std::prev(after);
  if (fitsInFile(offset - piece.offset, length, piece.bytes.size()))
    return std::span<const std::byte>(piece.bytes).subspan(offset - piece.offset, length);
  return std::nullopt;
}

uint64_t totalLength(const std::vector<Range>& ranges) {
  uint64_t total = 0;
  for (const Range& range : ranges)
    total += range.length; // merged ranges lie inside the file: no overflow
  return total;
}

std::string_view sectionName(std::span<const std::byte> names, uint32_t offset) {
  if (offset >= names.size())
    return {};
  const char* start = reinterpret_cast<const char*>(names.data()) + offset;
  const void* nul = std::memchr(start, 0, names.size() - offset);
  return nul ? std::string_view(start, static_cast<const char*>(nul) - start) : std::string_view();
}

// Sections whose bytes an ELF parser needs to list symbols and to name debug files.
bool isWantedSectionType(uint32_t type) {
  switch (type) {
  case SHT_SYMTAB:
  case SHT_DYNSYM:
  case SHT_SYMTAB_SHNDX:
  case SHT_NOTE:
  case SHT_GNU_versym:
  case SHT_GNU_verdef:
  case SHT_GNU_verneed:
  case SHT_GROUP:
    return true;
  default:
    return false;
  }
}

struct NoteLocation {
  uint64_t offset = 0, length = 0, alignment = 4;
};

// Collects the file ranges of the sketch; adds left-out pieces to warnings.
Result<std::vector<Range>> sketchRanges(const ElfFileReader& file, const ElfHeader& header,
                                        std::vector<NoteLocation>& notes,
                                        std::vector<std::string>& warnings) {
  std::vector<Range> ranges;
  ranges.push_back({0, header.header_size});

  PROCSNAP_TRY(checkTable("program header table", header.phoff, header.phnum, header.phentsize,
                          programHeaderSize(header), file.size()));
  if (header.phnum > 0) {
    ranges.push_back({header.phoff, header.phnum * header.phentsize});
    auto table = file.read(header.phoff, header.phnum * header.phentsize, "program header table");
    PROCSNAP_TRY(table);
    for (uint64_t i = 0; i < header.phnum; ++i) {
      Segment segment = segmentAt(header, table->data() + i * header.phentsize);
      if (segment.type != PT_NOTE && segment.type != PT_DYNAMIC && segment.type != PT_INTERP)
        continue;
      if (!fitsInFile(segment.offset, segment.filesz, file.size())) {
        warnings.push_back("program header " + std::to_string(i) + " at " +
                           hexString(segment.offset) + " (" + hexString(segment.filesz) +
                           " bytes) extends past the end of the file; left out");
        continue;
      }
      ranges.push_back({segment.offset, segment.filesz});
      if (segment.type == PT_NOTE)
        notes.push_back({segment.offset, segment.filesz, segment.align == 8 ? 8u : 4u});
    }
  }

  if (header.shoff == 0) {
    if (header.shnum != 0)
      return Error::make(ErrorCode::Malformed, "section header table at offset 0 with " +
                                                   std::to_string(header.shnum) + " entries");
    return ranges; // no section headers (stripped with sstrip, or a core-like file)
  }
  PROCSNAP_TRY(checkTable("section header table", header.shoff, header.shnum, header.shentsize,
                          sectionHeaderSize(header), file.size()));
  if (header.shnum == 0)
    return ranges;
  ranges.push_back({header.shoff, header.shnum * header.shentsize});
  auto table = file.read(header.shoff, header.shnum * header.shentsize, "section header table");
  PROCSNAP_TRY(table);
  auto section = [&](uint64_t index) {
    return sectionAt(header, table->data() + index * header.shentsize);
  };
  auto addSection = [&](uint64_t index, const Section& s, std::string_view why,
                        bool symbols = false) {
    if (s.type == SHT_NOBITS || s.size == 0)
      return true;
    if (!fitsInFile(s.offset, s.size, file.size())) {
      warnings.push_back(std::string(why) + " section " + std::to_string(index) + " at " +
                         hexString(s.offset) + " (" + hexString(s.size) +
                         " bytes) extends past the end of the file; left out");
      return false;
    }
    ranges.push_back({s.offset, s.size, symbols});
    return true;
  };

  std::vector<std::byte> names;
  if (header.shstrndx == SHN_UNDEF) {
    // no section names
  } else if (header.shstrndx >= header.shnum) {
    warnings.push_back("section name table index " + std::to_string(header.shstrndx) +
                       " is not below the section count " + std::to_string(header.shnum));
  } else {
    Section strtab = section(header.shstrndx);
    if (strtab.type != SHT_STRTAB) {
      warnings.push_back("section name table " + std::to_string(header.shstrndx) +
                         " is not SHT_STRTAB; left out");
    } else if (addSection(header.shstrndx, strtab, "section name table") && strtab.size > 0) {
      auto bytes = file.read(strtab.offset, strtab.size, "section name table");
      PROCSNAP_TRY(bytes);
      names = std::move(bytes).value();
    }
  }

  for (uint64_t i = 1; i < header.shnum; ++i) {
    Section s = section(i);
    std::string_view name = sectionName(names, s.name);
    bool wanted =
        isWantedSectionType(s.type) || name == ".gnu_debuglink" || name == ".gnu_debugdata";
    if (!wanted)
      continue;
    if (!addSection(i, s, name.empty() ? "a" : name, s.type != SHT_NOTE))
      continue;
    if (s.type == SHT_NOTE && s.size > 0)
      notes.push_back({s.offset, s.size, s.addralign == 8 ? 8u : 4u});
    if (s.type == SHT_SYMTAB || s.type == SHT_DYNSYM) {
      if (s.link == 0 || s.link >= header.shnum) {
        warnings.push_back("symbol table section " + std::to_string(i) + " links to section " +
                           std::to_string(s.link) + ", which does not exist");
        continue;
      }
      Section strings = section(s.link);
      if (strings.type != SHT_STRTAB) {
        warnings.push_back("string table section " + std::to_string(s.link) +
                           " of symbol table section " + std::to_string(i) +
                           " is not SHT_STRTAB; left out");
        continue;
      }
      addSection(s.link, strings, "string table", true);
    }
  }
  return ranges;
}

} // namespace

std::string buildIdFromNoteBytes(std::span<const std::byte> notes, size_t alignment) {
  if (alignment != 8)
    alignment = 4;
  constexpr size_t kNoteHeaderSize = 12; // namesz, descsz, type: three 32-bit words
  size_t pos = 0;
  while (notes.size() - pos >= kNoteHeaderSize) {
    auto word = [&](size_t at) { return loadStruct<uint32_t>(notes.data() + at); };
    const uint32_t name_size = word(pos), desc_size = word(pos + 4), type = word(pos + 8);
    pos += kNoteHeaderSize;
    if (name_size > notes.size() - pos)
      return "";
    std::span<const std::byte> name = notes.subspan(pos, name_size);
    pos = static_cast<size_t>(alignUp(pos + name_size, alignment));
    if (pos > notes.size() || desc_size > notes.size() - pos)
      return "";
    std::span<const std::byte> desc = notes.subspan(pos, desc_size);
    if (type == NT_GNU_BUILD_ID && name_size == sizeof kGnuNoteName &&
        std::memcmp(name.data(), kGnuNoteName, sizeof kGnuNoteName) == 0 && desc_size > 0 &&
        desc_size <= kMaxBuildIdBytes) {
      static constexpr char kDigits[] = "0123456789abcdef";
      std::string out;
      for (std::byte b : desc) {
        out += kDigits[static_cast<unsigned>(b) >> 4];
        out += kDigits[static_cast<unsigned>(b) & 0xf];
      }
      return out;
    }
    pos = static_cast<size_t>(alignUp(pos + desc_size, alignment));
    if (pos > notes.size())
      return "";
  }
  return "";
}

Result<ModuleSketch> sketchModule(int fd, const ModuleRecord& base, const SketchOptions& options,
                                  std::vector<std::string>* warnings) {
  struct stat info {};
  if (::fstat(fd, &info) != 0)
    return Error::make(ErrorCode::Io, "cannot stat " + base.path + ": " + errnoText(errno));
  if (!S_ISREG(info.st_mode))
    return Error::make(ErrorCode::InvalidArgument, base.path + " is not a regular file");
  ElfFileReader file(fd, static_cast<uint64_t>(info.st_size));

  auto header = readElfHeader(file);
  PROCSNAP_TRY(header);
  std::vector<NoteLocation> notes;
  std::vector<std::string> local_warnings;
  auto ranges = sketchRanges(file, *header, notes, local_warnings);
  PROCSNAP_TRY(ranges);

  ModuleSketch sketch;
  sketch.record = base;
  sketch.file_size = file.size();
  sketch.record.file_size = file.size();
  sketch.record.embedded = false;
  if (options.embed_whole_file) {
    if (file.size() <= options.max_file_size) {
      ranges->assign(1, Range{0, file.size()});
      sketch.record.embedded = true;
    } else {
      local_warnings.push_back("file of " + std::to_string(file.size()) +
                               " bytes is larger than the embedding limit of " +
                               std::to_string(options.max_file_size) + " bytes; sketched instead");
    }
  }

  std::vector<Range> merged = mergeRanges(*ranges);
  if (!sketch.record.embedded && totalLength(merged) > options.max_sketch_bytes) {
    const uint64_t wanted = totalLength(merged);
    std::erase_if(*ranges, [](const Range& range) { return range.symbols; });
    merged = mergeRanges(std::move(*ranges));
    if (totalLength(merged) > options.max_sketch_bytes)
      return Error::make(ErrorCode::InvalidArgument,
                         "sketch would hold " + std::to_string(totalLength(merged)) +
                             " bytes of headers and notes, more than its budget of " +
                             std::to_string(options.max_sketch_bytes) + " bytes; left out");
    local_warnings.push_back(
        "sketch would hold " + std::to_string(wanted) + " bytes, more than its budget of " +
        std::to_string(options.max_sketch_bytes) + " bytes; symbol tables left out");
  }
  for (const Range& range : merged) {
    auto bytes = file.read(range.offset, range.length, "sketch piece");
    PROCSNAP_TRY(bytes);
    sketch.pieces.push_back({range.offset, std::move(bytes).value()});
  }

  // PT_NOTE first (what the loader maps, and what the target's memory is checked against),
  // then SHT_NOTE sections.
  for (const NoteLocation& note : notes) {
    auto bytes = bytesInPieces(sketch, note.offset, note.length);
    if (!bytes)
      continue;
    sketch.record.build_id = buildIdFromNoteBytes(*bytes, note.alignment);
    if (!sketch.record.build_id.empty())
      break;
  }

  if (warnings)
    warnings->insert(warnings->end(), local_warnings.begin(), local_warnings.end());
  return sketch;
}

} // namespace procsnap

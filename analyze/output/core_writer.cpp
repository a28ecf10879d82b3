#include "analyze/output/core_writer.h"

#include "analyze/output/staged_output.h"

#include "analyze/output/printer.h"
#include "common/util/output_file.h"

#include <llvm/BinaryFormat/ELF.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace procsnap::analyze {

namespace {

namespace elf = llvm::ELF;

// Bytes read from the snapshot and written at a time: about one archive chunk.
constexpr size_t kCopyBlockBytes = size_t{1} << 20;
// A page-sized granule of a block that is all zero stays a hole instead of being written.
constexpr size_t kHoleGranuleBytes = 4096;
// Read failures reported one by one (with --salvage) before they are only counted.
constexpr size_t kMaxReadWarnings = 16;
// e_phnum at or above this spills into section header 0's sh_info (ELF extended numbering).
constexpr uint32_t kExtendedNumbering = 0xffff;
// The largest page size accepted from a snapshot's metadata (1 GiB huge pages).
constexpr uint64_t kMaxPageSize = uint64_t{1} << 30;
// The largest file offset a file can have (off_t is signed 64-bit): the segments' contents
// are laid out one after another, and a sum past this would wrap and give PT_LOADs whose
// p_offset + p_filesz lie past the end of the file.
constexpr uint64_t kMaxCoreFileSize = uint64_t{INT64_MAX};

// A common/ result as an llvm::Error (the boundary between common/ and analyze/).
struct LoadSegment {
  size_t region_index = 0;
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t filesz = 0;
  uint64_t offset = 0;
  uint32_t flags = 0;
};

uint64_t roundUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

uint32_t segmentFlags(const Permissions& perms) {
  uint32_t flags = 0;
  if (perms.read)
    flags |= elf::PF_R;
  if (perms.write)
    flags |= elf::PF_W;
  if (perms.execute)
    flags |= elf::PF_X;
  return flags;
}

// End of the region's last page whose contents the snapshot knows: stored, or read and found
// all zero. Beyond it gdb falls back to the mapped file (or zeros), as for a kernel core.
uint64_t knownContentsEnd(const RegionRecord& region) {
  uint64_t end = region.map().start;
  for (const PageRun& run : region.pages)
    if (holdsBytes(run.state) || run.state == PageState::Zero)
      end = std::max(end, std::min(run.end, region.map().end));
  return end;
}

llvm::Error invalidSnapshot(const std::string& message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

template <typename T> void appendStruct(std::vector<uint8_t>& out, const T& value) {
  const size_t at = out.size();
  out.resize(at + sizeof value);
  std::memcpy(out.data() + at, &value, sizeof value);
}

// ELF header, program headers, the extended-numbering section header when needed, and the notes.
std::vector<uint8_t> headersAndNotes(const std::vector<LoadSegment>& segments,
                                     const std::vector<std::byte>& notes, uint64_t notes_offset) {
  const uint64_t program_headers = segments.size() + 1;
  const bool extended = program_headers >= kExtendedNumbering;

  elf::Elf64_Ehdr header;
  std::memset(&header, 0, sizeof header);
  std::memcpy(header.e_ident, elf::ElfMagic, 4);
  header.e_ident[elf::EI_CLASS] = elf::ELFCLASS64;
  header.e_ident[elf::EI_DATA] = elf::ELFDATA2LSB;
  header.e_ident[elf::EI_VERSION] = elf::EV_CURRENT;
  header.e_ident[elf::EI_OSABI] = elf::ELFOSABI_NONE; // what the kernel writes
  header.e_type = elf::ET_CORE;
  header.e_machine = elf::EM_X86_64;
  header.e_version = elf::EV_CURRENT;
  header.e_phoff = sizeof(elf::Elf64_Ehdr);
  header.e_ehsize = sizeof(elf::Elf64_Ehdr);
  header.e_phentsize = sizeof(elf::Elf64_Phdr);
  header.e_phnum = static_cast<uint16_t>(extended ? kExtendedNumbering : program_headers);
  header.e_shentsize = sizeof(elf::Elf64_Shdr);
  if (extended) {
    header.e_shoff = sizeof(elf::Elf64_Ehdr) + program_headers * sizeof(elf::Elf64_Phdr);
    header.e_shnum = 1;
  }

  // Sized up front: one allocation (and g++ 12 -O2 sees a destination, no false
  // -Wstringop-overflow on the first append).
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(notes_offset) + notes.size());
  appendStruct(out, header);
  elf::Elf64_Phdr note;
  std::memset(&note, 0, sizeof note);
  note.p_type = elf::PT_NOTE;
  note.p_offset = notes_offset;
  note.p_filesz = notes.size();
  note.p_flags = elf::PF_R; // as gcore writes it (the kernel writes 0)
  note.p_align = 4;
  appendStruct(out, note);
  for (const LoadSegment& segment : segments) {
    elf::Elf64_Phdr load;
    std::memset(&load, 0, sizeof load);
    load.p_type = elf::PT_LOAD;
    load.p_flags = segment.flags;
    load.p_offset = segment.offset;
    load.p_vaddr = segment.vaddr;
    load.p_filesz = segment.filesz;
    load.p_memsz = segment.memsz;
    load.p_align = kHoleGranuleBytes; // ELF_EXEC_PAGESIZE, like the kernel
    appendStruct(out, load);
  }
  if (extended) {
    elf::Elf64_Shdr section;
    std::memset(&section, 0, sizeof section);
    section.sh_type = elf::SHT_NULL;
    section.sh_info = static_cast<uint32_t>(program_headers);
    appendStruct(out, section);
  }
  const auto* note_bytes = reinterpret_cast<const uint8_t*>(notes.data());
  out.insert(out.end(), note_bytes, note_bytes + notes.size());
  return out;
}

// Copies the stored bytes of segments into the file, leaving holes for everything else
// (unstored pages and stored pages that are all zero).
class SegmentCopier final {
public:
  SegmentCopier(const Snapshot& snapshot, OutputFile& file, const CoreWriteOptions& options,
                const CoreWriteProgress& progress, CoreWriteSummary& summary)
      : snapshot_(snapshot), file_(file), options_(options), progress_(progress), summary_(summary),
        block_(kCopyBlockBytes) {}
  SegmentCopier(const SegmentCopier&) = delete;
  SegmentCopier& operator=(const SegmentCopier&) = delete;

  llvm::Error copy(const std::vector<LoadSegment>& segments) {
    for (const LoadSegment& segment : segments)
      for (const StoredExtent& extent :
           snapshot_.storedExtents(segment.vaddr, segment.vaddr + segment.filesz))
        total_ += extent.size();
    report();
    for (const LoadSegment& segment : segments)
      for (const StoredExtent& extent :
           snapshot_.storedExtents(segment.vaddr, segment.vaddr + segment.filesz))
        if (llvm::Error error = copyExtent(segment, extent))
          return error;
    if (read_failures_ > kMaxReadWarnings)
      summary_.warnings.push_back(std::to_string(read_failures_ - kMaxReadWarnings) +
                                  " more blocks could not be read; written as holes");
    return llvm::Error::success();
  }

private:
  llvm::Error copyExtent(const LoadSegment& segment, const StoredExtent& extent) {
    for (uint64_t address = extent.start; address < extent.end;) {
      size_t size = static_cast<size_t>(std::min<uint64_t>(block_.size(), extent.end - address));
      llvm::MutableArrayRef<uint8_t> bytes(block_.data(), size);
      llvm::Expected<ReadResult> read = snapshot_.read(address, bytes);
      if (!read) {
        std::string range = hexString(address) + "-" + hexString(address + size);
        if (!options_.salvage)
          return invalidSnapshot("cannot read " + range + ": " + llvm::toString(read.takeError()) +
                                 " (--salvage writes holes)");
        std::string reason = llvm::toString(read.takeError());
        if (++read_failures_ <= kMaxReadWarnings)
          summary_.warnings.push_back("cannot read " + range + ": " + reason +
                                      "; written as a hole");
        summary_.bytes_unavailable += size;
      } else {
        summary_.bytes_unavailable += size - read->bytes_stored;
        if (llvm::Error error = writeNonZero(segment.offset + (address - segment.vaddr), bytes))
          return error;
      }
      address += size;
      done_ += size;
      report();
    }
    return llvm::Error::success();
  }

  llvm::Error writeNonZero(uint64_t offset, llvm::ArrayRef<uint8_t> bytes) {
    for (size_t at = 0; at < bytes.size();) {
      size_t granule = std::min(kHoleGranuleBytes, bytes.size() - at);
      llvm::ArrayRef<uint8_t> piece = bytes.slice(at, granule);
      if (std::any_of(piece.begin(), piece.end(), [](uint8_t byte) { return byte != 0; })) {
        if (llvm::Error error = toLlvmError(file_.write(offset + at, piece)))
          return error;
        summary_.bytes_written += granule;
      }
      at += granule;
    }
    return llvm::Error::success();
  }

  void report() {
    if (progress_)
      progress_(done_, total_);
  }

  const Snapshot& snapshot_;
  OutputFile& file_;
  const CoreWriteOptions& options_;
  const CoreWriteProgress& progress_;
  CoreWriteSummary& summary_;
  std::vector<uint8_t> block_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  size_t read_failures_ = 0;
};

} // namespace

llvm::Expected<CoreWriteSummary> writeCore(const Snapshot& snapshot,
                                           const CoreWriteOptions& options,
                                           const CoreWriteProgress& progress) {
  const SnapshotMetadata& metadata = snapshot.metadata();
  if (!metadata.host.machine.empty() && metadata.host.machine != "x86_64")
    return invalidSnapshot("export-core writes x86-64 cores; the snapshot is from " +
                           metadata.host.machine);
  const uint64_t page_size = metadata.host.page_size;
  if (page_size < kHoleGranuleBytes || page_size > kMaxPageSize ||
      (page_size & (page_size - 1)) != 0)
    return invalidSnapshot("the snapshot's page size " + std::to_string(page_size) +
                           " is not a power of two between 4096 and 1 GiB");

  CoreWriteSummary summary;
  CoreNotes notes = buildCoreNotes(metadata);
  summary.notes = notes.entries;
  summary.warnings = notes.warnings;
  summary.threads = static_cast<uint32_t>(metadata.threads.size());

  std::vector<LoadSegment> segments;
  uint64_t previous_end = 0;
  for (size_t index = 0; index < metadata.regions.size(); ++index) {
    const RegionRecord& region = metadata.regions[index];
    const MapsEntry& map = region.map();
    if (map.end <= map.start || map.start < previous_end)
      return invalidSnapshot("region " + std::to_string(index) + " (" + hexString(map.start) + "-" +
                             hexString(map.end) + ") is empty or overlaps the one before");
    previous_end = map.end;
    LoadSegment segment;
    segment.region_index = index;
    segment.vaddr = map.start;
    segment.memsz = map.size();
    segment.filesz = knownContentsEnd(region) - map.start;
    segment.flags = segmentFlags(map.perms);
    segments.push_back(segment);
  }

  const uint64_t program_headers = segments.size() + 1;
  const uint64_t notes_offset =
      sizeof(llvm::ELF::Elf64_Ehdr) + program_headers * sizeof(llvm::ELF::Elf64_Phdr) +
      (program_headers >= kExtendedNumbering ? sizeof(llvm::ELF::Elf64_Shdr) : 0);
  uint64_t offset = roundUp(notes_offset + notes.bytes.size(), page_size);
  for (LoadSegment& segment : segments) {
    segment.offset = offset;
    if (segment.filesz > kMaxCoreFileSize - offset ||
        roundUp(segment.filesz, page_size) > kMaxCoreFileSize - offset)
      return invalidSnapshot("region " + std::to_string(segment.region_index) + " (" +
                             hexString(segment.vaddr) + "-" +
                             hexString(segment.vaddr + segment.memsz) +
                             ") would put the core's "
                             "contents past the largest file size (" +
                             std::to_string(kMaxCoreFileSize) + " bytes)");
    offset += roundUp(segment.filesz, page_size);
    summary.memory_size += segment.memsz;
    summary.contents_size += segment.filesz;
    if (segment.filesz == 0)
      ++summary.segments_without_contents;
  }
  summary.load_segments = static_cast<uint32_t>(segments.size());
  summary.file_size = segments.empty() ? notes_offset + notes.bytes.size() : offset;

  llvm::Expected<std::unique_ptr<OutputFile>> file =
      createStagedOutput(options.path, options.force);
  if (!file)
    return file.takeError();
  // Sized first: what is never written stays a hole.
  if (llvm::Error error = toLlvmError((*file)->resize(summary.file_size)))
    return error;
  std::vector<uint8_t> head = headersAndNotes(segments, notes.bytes, notes_offset);
  if (llvm::Error error = toLlvmError((*file)->write(0, head)))
    return error;
  SegmentCopier copier(snapshot, **file, options, progress, summary);
  if (llvm::Error error = copier.copy(segments))
    return error;
  summary.allocated_size = (*file)->allocatedBytes();
  if (llvm::Error error = toLlvmError((*file)->commit()))
    return error;
  return summary;
}

} // namespace procsnap::analyze

#include "capture/module_collector.h"

#include "capture/module_sketcher.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace procsnap {
namespace {

// Bounds on what is read from target memory to find a build-id: real binaries have a
// handful of program headers and notes of a few hundred bytes.
constexpr uint16_t kMaxProgramHeaders = 512;
constexpr uint64_t kMaxNoteSegmentSize = 64 * 1024;

template <typename T> bool readStruct(const CopiedMemoryReader& memory, uint64_t address, T& out) {
  return memory(address, std::span<std::byte>(reinterpret_cast<std::byte*>(&out), sizeof out));
}

std::string mapFilesPath(pid_t pid, const MapsEntry& map) {
  char text[96];
  std::snprintf(text, sizeof text, "/proc/%d/map_files/%llx-%llx", static_cast<int>(pid),
                static_cast<unsigned long long>(map.start),
                static_cast<unsigned long long>(map.end));
  return text;
}

bool hasElfMagic(int fd) {
  unsigned char magic[SELFMAG];
  return ::pread(fd, magic, SELFMAG, 0) == SELFMAG && std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

// Opens read-only without blocking on odd files and without becoming their controlling tty.
int openForReading(const std::string& path) {
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

} // namespace

ModuleCollector ModuleCollector::open(pid_t pid, std::span<const RegionRecord> regions) {
  ModuleCollector collector;
  std::set<std::tuple<uint32_t, uint32_t, uint64_t>> seen;
  for (const RegionRecord& region : regions) {
    const MapsEntry& map = region.map();
    if (map.inode == 0 || map.path.empty() || map.path.front() != '/')
      continue; // anonymous or pseudo
    if (!seen.insert({map.dev_major, map.dev_minor, map.inode}).second)
      continue; // regions are sorted, so the first mapping is the lowest: the load address
    OpenModule module;
    module.base.path = map.path;
    module.base.load_address = map.start;
    module.base.deleted = map.deleted;
    module.base.source = "map_files";
    int fd = openForReading(mapFilesPath(pid, map));
    if (fd < 0 && !map.deleted) {
      // map_files needs more privilege on some kernels; the path works while the file is
      // the one mapped (checked by inode below).
      fd = openForReading(map.path);
      module.base.source = "path";
    }
    if (fd < 0)
      continue; // e.g. a deleted file without map_files access: nothing to sketch from
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !hasElfMagic(fd)) {
      ::close(fd);
      continue;
    }
    if (module.base.source == "path" && st.st_ino != map.inode) {
      collector.warnings_.push_back("module " + map.path +
                                    " was replaced on disk since it was mapped: no sketch");
      ::close(fd);
      continue;
    }
    module.fd = fd;
    module.base.file_size = static_cast<uint64_t>(st.st_size);
    collector.modules_.push_back(std::move(module));
  }
  return collector;
}

ModuleCollector::ModuleCollector(ModuleCollector&& other) noexcept
    : modules_(std::move(other.modules_)), warnings_(std::move(other.warnings_)) {
  other.modules_.clear();
}

ModuleCollector& ModuleCollector::operator=(ModuleCollector&& other) noexcept {
  if (this != &other) {
    closeAll();
    modules_ = std::move(other.modules_);
    warnings_ = std::move(other.warnings_);
    other.modules_.clear();
  }
  return *this;
}

ModuleCollector::~ModuleCollector() {
  closeAll();
}

void ModuleCollector::closeAll() {
  for (OpenModule& module : modules_)
    if (module.fd >= 0) {
      ::close(module.fd);
      module.fd = -1;
    }
  modules_.clear();
}

std::vector<ModuleSketch> ModuleCollector::collect(const ModuleCollectOptions& options,
                                                   const CopiedMemoryReader& memory) {
  std::vector<ModuleSketch> sketches;
  std::set<std::string> embedded_build_ids;
  uint64_t sketch_bytes_left = kMaxSketchBytesPerArchive; // what later modules may still use
  bool budget_reported = false;
  for (OpenModule& module : modules_) {
    module.base.build_id_memory = buildIdFromMemory(module.base.load_address, memory);
    std::vector<std::string> sketch_warnings;
    SketchOptions sketch_options;
    sketch_options.max_sketch_bytes = std::min(kMaxSketchBytesPerModule, sketch_bytes_left);
    auto sketch = sketchModule(module.fd, module.base, sketch_options, &sketch_warnings);
    if (sketch)
      for (const ModuleSketch::Piece& piece : sketch->pieces)
        sketch_bytes_left -= std::min<uint64_t>(sketch_bytes_left, piece.bytes.size());
    if (sketch_options.max_sketch_bytes < kMaxSketchBytesPerModule && !budget_reported) {
      budget_reported = true; // once: every later module is cut by the same budget
      warnings_.push_back("the sketch budget of the archive (" +
                          std::to_string(kMaxSketchBytesPerArchive >> 20) +
                          " MiB) is used up from module " + module.base.path +
                          " on: later sketches are cut or left out");
    }
    for (const std::string& warning : sketch_warnings)
      warnings_.push_back("module " + module.base.path + ": " + warning);
    if (!sketch) {
      warnings_.push_back("module " + module.base.path + ": " + sketch.error().message);
      continue;
    }
    const std::string build_id = sketch->record.build_id;
    // Embed each distinct binary once; files without a build-id cannot be deduplicated and
    // are embedded each.
    const bool embed = options.embed_binaries && sketch->file_size <= kDefaultMaxEmbedFileSize &&
                       (build_id.empty() || embedded_build_ids.insert(build_id).second);
    if (options.embed_binaries && sketch->file_size > kDefaultMaxEmbedFileSize)
      warnings_.push_back("module " + module.base.path + " is larger than " +
                          std::to_string(kDefaultMaxEmbedFileSize >> 20) +
                          " MiB: sketch stored instead of the whole file");
    if (embed) {
      auto whole =
          sketchModule(module.fd, module.base, SketchOptions{true, kDefaultMaxEmbedFileSize});
      if (whole)
        sketch = std::move(whole);
      else
        warnings_.push_back("module " + module.base.path +
                            ": cannot embed: " + whole.error().message);
    }
    if (!sketch->record.build_id_memory.empty() && !sketch->record.build_id.empty() &&
        sketch->record.build_id_memory != sketch->record.build_id)
      warnings_.push_back("module " + module.base.path + ": build-id in memory (" +
                          sketch->record.build_id_memory + ") differs from the file's (" +
                          sketch->record.build_id + ")");
    sketches.push_back(std::move(*sketch));
  }
  closeAll();
  return sketches;
}

std::string buildIdFromMemory(uint64_t load_address, const CopiedMemoryReader& memory) {
  Elf64_Ehdr header{};
  if (!readStruct(memory, load_address, header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 ||
      header.e_phnum > kMaxProgramHeaders)
    return {};
  std::vector<Elf64_Phdr> phdrs(header.e_phnum);
  if (!memory(load_address + header.e_phoff,
              std::span<std::byte>(reinterpret_cast<std::byte*>(phdrs.data()),
                                   phdrs.size() * sizeof(Elf64_Phdr))))
    return {};
  // The load bias: the lowest PT_LOAD (file offset 0) is mapped at load_address.
  const Elf64_Phdr* first_load = nullptr;
  for (const Elf64_Phdr& phdr : phdrs)
    if (phdr.p_type == PT_LOAD && (!first_load || phdr.p_vaddr < first_load->p_vaddr))
      first_load = &phdr;
  if (!first_load || first_load->p_offset >= 4096)
    return {};
  const uint64_t bias = load_address - (first_load->p_vaddr & ~uint64_t{4095});
  for (const Elf64_Phdr& phdr : phdrs) {
    if (phdr.p_type != PT_NOTE || phdr.p_memsz == 0 || phdr.p_memsz > kMaxNoteSegmentSize)
      continue;
    std::vector<std::byte> notes(phdr.p_memsz);
    if (!memory(bias + phdr.p_vaddr, notes))
      continue;
    std::string build_id = buildIdFromNoteBytes(notes, phdr.p_align == 8 ? 8 : 4);
    if (!build_id.empty())
      return build_id;
  }
  return {};
}

} // namespace procsnap

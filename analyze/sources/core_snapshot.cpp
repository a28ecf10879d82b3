#include "analyze/sources/core_snapshot.h"

#include "common/util/terminal_text.h"

#include "analyze/model/elf_module.h" // summarizeElfFile
#include "analyze/sources/core_notes.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Object/ELF.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/FormatVariadic.h>
#include <llvm/Support/Path.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace procsnap::analyze {

namespace {

using ElfFile = llvm::object::ELFFile<llvm::object::ELF64LE>;
using Phdr = ElfFile::Elf_Phdr;

// Auxiliary vector keys used here (<elf.h> cannot share a TU with LLVM's ELF headers).
constexpr uint64_t kAtPagesz = 6;
constexpr uint64_t kAtEntry = 9;
constexpr uint64_t kAtRandom = 25;
constexpr uint64_t kAtSysinfoEhdr = 33;

// e_phnum when the real count is in section header 0's sh_info (not in llvm::ELF).
constexpr uint64_t kPnXnum = 0xffff;
constexpr uint64_t kVsyscallAddress = 0xffffffffff600000ull;
// x86-64 randomizes the start of the heap (brk) up to 1 GiB above the executable's end
// (arch_randomize_brk); the first anonymous writable mapping in that window is taken for it.
constexpr uint64_t kMaxBrkRandomization = uint64_t{1} << 30;
// A register set larger than this is damage: x86 XSAVE areas are a few KiB.
constexpr size_t kMaxRegisterSetBytes = size_t{1} << 20;
// Bytes read from a module's first mapping to find its build-id: the program headers and the
// notes of any real ELF file lie well inside this.
constexpr size_t kMaxModuleHeaderBytes = 64 * 1024;
// A core with more warnings than this says so once instead of flooding the output.
constexpr size_t kMaxWarnings = 100;

llvm::Error coreError(llvm::StringRef path, const llvm::Twine& what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot open '%s': %s",
                                 path.str().c_str(), what.str().c_str());
}

std::string hex(uint64_t value) {
  return "0x" + llvm::utohexstr(value, /*LowerCase=*/true);
}

template <typename T> T loadStruct(llvm::ArrayRef<uint8_t> bytes) {
  T value{};
  std::memcpy(&value, bytes.data(), std::min(sizeof(T), bytes.size()));
  return value;
}

uint64_t loadU64(const uint8_t* p) {
  uint64_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

uint32_t loadU32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

std::string fixedString(const char* text, size_t capacity) {
  return std::string(text, strnlen(text, capacity));
}

// Names of shared anonymous memory as maps prints them (common/model/region_kind.cpp): a core does
// not record MAP_SHARED, but these are shared in practice.
bool looksShared(llvm::StringRef path) {
  return path.starts_with("/memfd:") || path.starts_with("/SYSV") || path == "/dev/zero" ||
         path.starts_with("/dev/shm/");
}

// The GNU build-id in a block of ELF notes, or "".
std::string buildIdInNotes(llvm::ArrayRef<uint8_t> notes) {
  size_t offset = 0;
  while (offset + 12 <= notes.size()) {
    uint32_t name_size = loadU32(notes.data() + offset);
    uint32_t desc_size = loadU32(notes.data() + offset + 4);
    uint32_t type = loadU32(notes.data() + offset + 8);
    uint64_t name_start = offset + 12;
    uint64_t desc_start = name_start + llvm::alignTo(name_size, 4);
    uint64_t next = desc_start + llvm::alignTo(desc_size, 4);
    if (desc_start + desc_size > notes.size())
      return "";
    llvm::StringRef name(reinterpret_cast<const char*>(notes.data() + name_start), name_size);
    if (type == 3 && name_size == 4 && name == llvm::StringRef("GNU\0", 4) && desc_size > 0)
      return llvm::toHex(notes.slice(desc_start, desc_size), /*LowerCase=*/true);
    offset = next;
  }
  return "";
}

} // namespace

// Builds a CoreSnapshot's metadata and region sources from the core's bytes.
class CoreSnapshot::Parser final {
public:
  Parser(CoreSnapshot& snapshot, const OpenOptions& options)
      : snapshot_(snapshot), options_(options), metadata_(snapshot.metadata_),
        bytes_(reinterpret_cast<const uint8_t*>(snapshot.core_->getBufferStart()),
               snapshot.core_->getBufferSize()) {}

  llvm::Error run() {
    const std::string& path = snapshot_.path_;
    if (bytes_.size() < sizeof(ElfFile::Elf_Ehdr) || std::memcmp(bytes_.data(),
                                                                 "\x7f"
                                                                 "ELF",
                                                                 4))
      return coreError(path, "not an ELF core file (no ELF header)");
    if (bytes_[llvm::ELF::EI_CLASS] != llvm::ELF::ELFCLASS64 ||
        bytes_[llvm::ELF::EI_DATA] != llvm::ELF::ELFDATA2LSB)
      return coreError(path, "only 64-bit little-endian cores are supported");
    auto elf = ElfFile::create(
        llvm::StringRef(reinterpret_cast<const char*>(bytes_.data()), bytes_.size()));
    if (!elf)
      return coreError(path, "damaged ELF header: " + llvm::toString(elf.takeError()));
    const auto& header = elf->getHeader();
    if (header.e_type != llvm::ELF::ET_CORE)
      return coreError(path, llvm::formatv("an ELF file but not a core (e_type {0})",
                                           static_cast<unsigned>(header.e_type)));
    if (header.e_machine != llvm::ELF::EM_X86_64)
      return coreError(path, llvm::formatv("only x86-64 cores are supported (e_machine {0})",
                                           static_cast<unsigned>(header.e_machine)));
    auto phdrs = programHeaders(*elf);
    if (!phdrs)
      return coreError(path, llvm::toString(phdrs.takeError()));

    for (const Phdr& phdr : *phdrs)
      if (phdr.p_type == llvm::ELF::PT_NOTE)
        parseNotes(*elf, phdr);
    metadata_.host.page_size = static_cast<uint32_t>(pageSize());
    for (const Phdr& phdr : *phdrs)
      if (phdr.p_type == llvm::ELF::PT_LOAD)
        addLoad(phdr);
    buildRegions();
    finishThreads();
    classify();
    buildModules();
    fillFromFiles();
    finishStats();
    return llvm::Error::success();
  }

private:
  struct Load {
    uint64_t vaddr = 0, memsz = 0, filesz = 0, offset = 0;
    uint32_t flags = 0;
  };
  struct FileEntry {
    uint64_t start = 0, end = 0, offset = 0;
    std::string path;
    bool deleted = false;
    bool used = false;
  };

  void warn(std::string message) {
    if (metadata_.warnings.size() < kMaxWarnings)
      metadata_.warnings.push_back(escapeForTerminal(message)); // they quote NT_FILE names
    else if (metadata_.warnings.size() == kMaxWarnings)
      metadata_.warnings.push_back("more warnings left out");
  }

  // The program header table, bounds-checked; PN_XNUM (0xffff) means the real count is in
  // section header 0's sh_info, as the kernel writes it for processes with many mappings.
  llvm::Expected<llvm::ArrayRef<Phdr>> programHeaders(const ElfFile& elf) {
    const auto& header = elf.getHeader();
    uint64_t count = header.e_phnum;
    if (count == kPnXnum) {
      auto sections = elf.sections();
      if (!sections)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "e_phnum is PN_XNUM but section header 0 is damaged: " +
                                           llvm::toString(sections.takeError()));
      if (sections->empty())
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "e_phnum is PN_XNUM but there is no section header 0");
      count = (*sections)[0].sh_info;
    }
    if (count == 0)
      return llvm::ArrayRef<Phdr>();
    if (header.e_phentsize != sizeof(Phdr))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "e_phentsize is %u, expected %zu",
                                     static_cast<unsigned>(header.e_phentsize), sizeof(Phdr));
    uint64_t offset = header.e_phoff;
    if (offset > bytes_.size() || count > (bytes_.size() - offset) / sizeof(Phdr))
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the program header table (%llu entries at offset 0x%llx) runs past the end of "
          "the file (%zu bytes)",
          static_cast<unsigned long long>(count), static_cast<unsigned long long>(offset),
          bytes_.size());
    if (offset % alignof(Phdr) != 0)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "the program header table is misaligned (offset 0x%llx)",
                                     static_cast<unsigned long long>(offset));
    return llvm::ArrayRef<Phdr>(reinterpret_cast<const Phdr*>(bytes_.data() + offset),
                                static_cast<size_t>(count));
  }

  void parseNotes(const ElfFile& elf, const Phdr& phdr) {
    if (phdr.p_offset > bytes_.size() || phdr.p_filesz > bytes_.size() - phdr.p_offset) {
      warn("a PT_NOTE segment at offset " + hex(phdr.p_offset) + " (" +
           std::to_string(phdr.p_filesz) + " bytes) runs past the end of the file; skipped");
      markPartial("notes run past the end of the file");
      return;
    }
    llvm::Error error = llvm::Error::success();
    for (const auto& note : elf.notes(phdr, error)) {
      llvm::StringRef owner = note.getName();
      llvm::ArrayRef<uint8_t> desc = note.getDesc(core::kNoteAlignment);
      uint32_t type = note.getType();
      if (owner == llvm::StringRef(core::kOwnerCore))
        parseCoreNote(type, desc);
      else if (owner == llvm::StringRef(core::kOwnerLinux))
        addRegisterSet(type, desc);
    }
    if (error)
      warn("damaged notes at offset " + hex(phdr.p_offset) + ": " +
           llvm::toString(std::move(error)) + "; later notes ignored");
  }

  void parseCoreNote(uint32_t type, llvm::ArrayRef<uint8_t> desc) {
    switch (type) {
    case core::kNtPrStatus: {
      if (desc.size() < offsetof(core::CorePrStatus, pr_reg) + core::kUserRegsSize) {
        warn("an NT_PRSTATUS note of " + std::to_string(desc.size()) +
             " bytes is too short; "
             "skipped");
        current_thread_ = -1;
        return;
      }
      auto status = loadStruct<core::CorePrStatus>(desc);
      ThreadRecord thread;
      thread.tid = status.pr_pid;
      thread.pc = status.pr_reg[core::kUserRegsRipIndex];
      thread.sp = status.pr_reg[core::kUserRegsRspIndex];
      RegisterSet regs;
      regs.note_type = core::kNtPrStatus;
      auto reg_bytes = desc.slice(offsetof(core::CorePrStatus, pr_reg), core::kUserRegsSize);
      regs.bytes.assign(reinterpret_cast<const std::byte*>(reg_bytes.data()),
                        reinterpret_cast<const std::byte*>(reg_bytes.data()) + reg_bytes.size());
      thread.register_sets.push_back(std::move(regs));
      if (!first_ppid_)
        first_ppid_ = status.pr_ppid;
      metadata_.threads.push_back(std::move(thread));
      current_thread_ = static_cast<int>(metadata_.threads.size()) - 1;
      return;
    }
    case core::kNtPrPsInfo: {
      if (desc.size() < sizeof(core::CorePrPsInfo)) {
        warn("an NT_PRPSINFO note of " + std::to_string(desc.size()) +
             " bytes is too short; skipped");
        return;
      }
      auto info = loadStruct<core::CorePrPsInfo>(desc);
      ProcessInfo& process = metadata_.process;
      process.pid = info.pr_pid;
      process.ppid = info.pr_ppid;
      process.comm = fixedString(info.pr_fname, sizeof info.pr_fname);
      // pr_psargs is the command line truncated to 80 bytes with NULs turned into spaces.
      std::string args = fixedString(info.pr_psargs, sizeof info.pr_psargs);
      llvm::SmallVector<llvm::StringRef, 8> words;
      llvm::StringRef(args).split(words, ' ', -1, /*KeepEmpty=*/false);
      process.cmdline.assign(words.begin(), words.end());
      // The core records only the real ids.
      process.uid.fill(info.pr_uid);
      process.gid.fill(info.pr_gid);
      if (info.pr_sname)
        process.status.push_back({"State", std::string(1, info.pr_sname)});
      has_psinfo_ = true;
      return;
    }
    case core::kNtAuxv: {
      auto& auxv = metadata_.process.auxv;
      auxv.clear();
      for (size_t offset = 0; offset + 16 <= desc.size(); offset += 16) {
        AuxvEntry entry{loadU64(desc.data() + offset), loadU64(desc.data() + offset + 8)};
        if (entry.type == 0)
          break;
        auxv.push_back(entry);
      }
      return;
    }
    case core::kNtFile:
      parseFileNote(desc);
      return;
    case core::kNtSigInfo:
      return;
    default:
      addRegisterSet(type, desc); // NT_FPREGSET and other CORE register sets
      return;
    }
  }

  // A register set after NT_PRSTATUS belongs to that thread (the kernel and gdb write each
  // thread's sets after its NT_PRSTATUS).
  void addRegisterSet(uint32_t type, llvm::ArrayRef<uint8_t> desc) {
    if (current_thread_ < 0)
      return;
    if (desc.size() > kMaxRegisterSetBytes) {
      warn("register set note " + hex(type) + " of " + std::to_string(desc.size()) +
           " bytes is implausibly large; skipped");
      return;
    }
    RegisterSet regs;
    regs.note_type = type;
    regs.bytes.assign(reinterpret_cast<const std::byte*>(desc.data()),
                      reinterpret_cast<const std::byte*>(desc.data()) + desc.size());
    metadata_.threads[static_cast<size_t>(current_thread_)].register_sets.push_back(
        std::move(regs));
  }

  void parseFileNote(llvm::ArrayRef<uint8_t> desc) {
    if (desc.size() < 16) {
      warn("an NT_FILE note of " + std::to_string(desc.size()) + " bytes is too short; skipped");
      return;
    }
    uint64_t count = loadU64(desc.data());
    uint64_t page_size = loadU64(desc.data() + 8);
    constexpr uint64_t kEntryBytes = 24;
    if (count > (desc.size() - 16) / kEntryBytes) {
      warn("the NT_FILE note claims " + std::to_string(count) + " mappings but holds at most " +
           std::to_string((desc.size() - 16) / kEntryBytes) + "; skipped");
      return;
    }
    size_t names = static_cast<size_t>(16 + count * kEntryBytes);
    std::vector<FileEntry> entries;
    entries.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      const uint8_t* entry = desc.data() + 16 + i * kEntryBytes;
      FileEntry file;
      file.start = loadU64(entry);
      file.end = loadU64(entry + 8);
      uint64_t pages = loadU64(entry + 16);
      if (page_size != 0 && pages > UINT64_MAX / page_size) {
        warn("NT_FILE entry " + std::to_string(i) + " has an impossible file offset; skipped");
        return;
      }
      file.offset = pages * page_size;
      if (names >= desc.size()) {
        warn("the NT_FILE note lacks names for " + std::to_string(count - i) + " mappings");
        break;
      }
      const char* name = reinterpret_cast<const char*>(desc.data() + names);
      size_t length = strnlen(name, desc.size() - names);
      file.path.assign(name, length);
      names += length + 1;
      llvm::StringRef text(file.path);
      if (text.consume_back(" (deleted)")) {
        file.path = text.str();
        file.deleted = true;
      }
      if (file.end <= file.start) {
        warn("NT_FILE entry for '" + file.path + "' has an empty range; skipped");
        continue;
      }
      entries.push_back(std::move(file));
    }
    for (FileEntry& entry : entries)
      files_.emplace(entry.start, std::move(entry));
  }

  uint64_t auxv(uint64_t type) const {
    for (const AuxvEntry& entry : metadata_.process.auxv)
      if (entry.type == type)
        return entry.value;
    return 0;
  }

  uint64_t pageSize() const {
    uint64_t size = auxv(kAtPagesz);
    return size >= 4096 && size <= (uint64_t{1} << 30) && llvm::isPowerOf2_64(size) ? size : 4096;
  }

  void markPartial(const std::string& reason) {
    if (!metadata_.partial) {
      metadata_.partial = true;
      metadata_.partial_reason = reason;
    }
  }

  void addLoad(const Phdr& phdr) {
    Load load{phdr.p_vaddr, phdr.p_memsz, phdr.p_filesz, phdr.p_offset, phdr.p_flags};
    if (load.memsz == 0)
      return; // nothing mapped: not a region
    if (load.vaddr + load.memsz < load.vaddr) {
      warn("a PT_LOAD at " + hex(load.vaddr) + " of " + std::to_string(load.memsz) +
           " bytes wraps around the address space; skipped");
      return;
    }
    if (load.filesz > load.memsz) {
      warn("a PT_LOAD at " + hex(load.vaddr) + " stores more bytes than it maps; clipped");
      load.filesz = load.memsz;
    }
    loads_.push_back(load);
  }

  // PT_LOADs become regions (sorted, overlaps dropped); NT_FILE entries give paths and file
  // offsets, and mappings NT_FILE lists without a PT_LOAD become regions with no bytes.
  void buildRegions() {
    std::sort(loads_.begin(), loads_.end(),
              [](const Load& a, const Load& b) { return a.vaddr < b.vaddr; });
    struct Pending {
      Load load;
      const FileEntry* file = nullptr;
      bool from_note_only = false;
    };
    std::vector<Pending> pending;
    uint64_t previous_end = 0;
    for (const Load& load : loads_) {
      if (!pending.empty() && load.vaddr < previous_end) {
        warn("a PT_LOAD at " + hex(load.vaddr) + " overlaps the one before it; skipped");
        continue;
      }
      Pending item{load, nullptr, false};
      if (auto it = files_.find(load.vaddr); it != files_.end()) {
        it->second.used = true;
        item.file = &it->second;
        if (it->second.end != load.vaddr + load.memsz)
          warn("NT_FILE says '" + it->second.path + "' at " + hex(load.vaddr) + " ends at " +
               hex(it->second.end) + ", its PT_LOAD at " + hex(load.vaddr + load.memsz));
      }
      pending.push_back(item);
      previous_end = load.vaddr + load.memsz;
    }
    // File mappings without a PT_LOAD (gcore leaves out file mappings it does not dump).
    for (auto& [start, file] : files_) {
      if (file.used)
        continue;
      auto next =
          std::lower_bound(pending.begin(), pending.end(), file.start,
                           [](const Pending& p, uint64_t value) { return p.load.vaddr < value; });
      bool overlaps = (next != pending.end() && next->load.vaddr < file.end) ||
                      (next != pending.begin() &&
                       std::prev(next)->load.vaddr + std::prev(next)->load.memsz > file.start);
      if (overlaps) {
        warn("NT_FILE mapping of '" + file.path + "' at " + hex(file.start) +
             " overlaps a PT_LOAD it does not start; ignored");
        continue;
      }
      // Read-only until the module's program headers say otherwise: gcore leaves out the
      // file mappings that were never written, which are read-only in practice.
      Load load{file.start, file.end - file.start, 0, 0, llvm::ELF::PF_R};
      pending.insert(next, Pending{load, &file, true});
    }

    const uint64_t core_size = bytes_.size();
    for (const Pending& item : pending) {
      RegionRecord region;
      MapsEntry& map = region.smaps.map;
      map.start = item.load.vaddr;
      map.end = item.load.vaddr + item.load.memsz;
      map.perms.read = (item.load.flags & llvm::ELF::PF_R) != 0;
      map.perms.write = (item.load.flags & llvm::ELF::PF_W) != 0;
      map.perms.execute = (item.load.flags & llvm::ELF::PF_X) != 0;
      if (item.file) {
        map.path = item.file->path;
        map.deleted = item.file->deleted;
        map.offset = item.file->offset;
        map.perms.shared = looksShared(map.path);
      }
      RegionSource source;
      uint64_t stored = item.load.filesz;
      source.core_offset = item.load.offset;
      if (stored > 0 && (item.load.offset > core_size || stored > core_size - item.load.offset)) {
        uint64_t kept = item.load.offset > core_size ? 0 : core_size - item.load.offset;
        warn("the core ends inside the PT_LOAD at " + hex(map.start) + ": " +
             std::to_string(stored - kept) + " of its " + std::to_string(stored) +
             " bytes are missing");
        markPartial("the core file is truncated");
        region.pages.push_back({map.start, map.start + kept, PageState::Stored});
        region.pages.push_back({map.start + kept, map.start + stored, PageState::Lost});
        stored = kept;
      } else if (stored > 0) {
        region.pages.push_back({map.start, map.start + stored, PageState::Stored});
      }
      if (region.pages.size() > 0 && region.pages.front().start == region.pages.front().end)
        region.pages.erase(region.pages.begin());
      source.stored_bytes = stored;
      if (item.load.filesz < item.load.memsz)
        region.pages.push_back({map.start + item.load.filesz, map.end, PageState::ExcludedFilter});
      if (item.from_note_only) {
        region.note = "the core has no program header for this mapping (permissions inferred)";
        note_only_.insert(metadata_.regions.size());
      }
      metadata_.regions.push_back(std::move(region));
      snapshot_.sources_.push_back(source);
    }
    nameAnonymousRegions();
  }

  // A core names no anonymous mapping; these names are inferred as maps would print them.
  void nameAnonymousRegions() {
    auto& regions = metadata_.regions;
    auto isAnonymous = [](const RegionRecord& r) { return r.map().path.empty(); };
    auto regionAt = [&](uint64_t address) -> RegionRecord* {
      for (RegionRecord& r : regions)
        if (address >= r.map().start && address < r.map().end)
          return &r;
      return nullptr;
    };
    if (uint64_t vdso = auxv(kAtSysinfoEhdr)) {
      for (size_t i = 0; i < regions.size(); ++i) {
        if (regions[i].map().start != vdso || !isAnonymous(regions[i]))
          continue;
        regions[i].smaps.map.path = "[vdso]";
        // [vvar] (and on newer kernels [vvar_vclock]) lie right below [vdso].
        std::vector<size_t> below;
        for (size_t j = i; j > 0 && below.size() < 2; --j) {
          const RegionRecord& r = regions[j - 1];
          if (r.map().end != regions[j].map().start || !isAnonymous(r) || r.map().perms.write ||
              r.map().perms.execute)
            break;
          below.push_back(j - 1);
        }
        if (below.size() == 2) {
          regions[below[0]].smaps.map.path = "[vvar_vclock]";
          regions[below[1]].smaps.map.path = "[vvar]";
        } else if (below.size() == 1) {
          regions[below[0]].smaps.map.path = "[vvar]";
        }
        break;
      }
    }
    if (RegionRecord* r = regionAt(kVsyscallAddress); r && isAnonymous(*r))
      r->smaps.map.path = "[vsyscall]";
    uint64_t stack_address = auxv(kAtRandom);
    if (!stack_address) {
      for (const ThreadRecord& thread : metadata_.threads)
        if (thread.tid == metadata_.process.pid)
          stack_address = thread.sp;
    }
    if (RegionRecord* r = stack_address ? regionAt(stack_address) : nullptr; r && isAnonymous(*r))
      r->smaps.map.path = "[stack]";
    // The heap: the first anonymous writable mapping above the executable and its .bss.
    if (RegionRecord* exe = regionAt(auxv(kAtEntry)); exe && !exe->map().path.empty()) {
      metadata_.process.exe = exe->map().path;
      uint64_t end = 0;
      for (const RegionRecord& r : regions)
        if (r.map().path == exe->map().path)
          end = std::max(end, r.map().end);
      for (size_t i = 0; i < regions.size(); ++i) {
        RegionRecord& r = regions[i];
        if (r.map().start < end)
          continue;
        if (r.map().start == end && isAnonymous(r) && r.map().perms.write) {
          end = r.map().end; // the rest of the executable's .bss
          continue;
        }
        if (r.map().start - end <= kMaxBrkRandomization && isAnonymous(r) && r.map().perms.read &&
            r.map().perms.write && !r.map().perms.execute)
          r.smaps.map.path = "[heap]";
        break;
      }
    }
  }

  void finishThreads() {
    auto& threads = metadata_.threads;
    int32_t pid = metadata_.process.pid;
    if (!has_psinfo_ && !threads.empty()) {
      metadata_.process.pid = threads.front().tid; // the kernel writes the dumping thread first
      metadata_.process.ppid = first_ppid_.value_or(0);
      pid = metadata_.process.pid;
    }
    auto main = std::find_if(threads.begin(), threads.end(),
                             [&](const ThreadRecord& t) { return t.tid == pid; });
    if (main != threads.end() && main != threads.begin())
      std::rotate(threads.begin(), main, main + 1);
    if (!threads.empty() && threads.front().tid == pid)
      threads.front().name = metadata_.process.comm;
  }

  void classify() {
    std::vector<MapsEntry> maps;
    maps.reserve(metadata_.regions.size());
    for (const RegionRecord& region : metadata_.regions)
      maps.push_back(region.map());
    std::vector<uint64_t> stack_pointers;
    for (const ThreadRecord& thread : metadata_.threads)
      if (thread.tid != metadata_.process.pid)
        stack_pointers.push_back(thread.sp);
    std::vector<RegionKind> kinds = classifyRegions(maps, stack_pointers);
    for (size_t i = 0; i < kinds.size(); ++i)
      metadata_.regions[i].kind = kinds[i];
  }

  // Reads [address, address + size) from the core's own bytes (Stored pages only).
  bool readStored(uint64_t address, llvm::MutableArrayRef<uint8_t> out) const {
    int index = snapshot_.findRegion(address);
    if (index < 0)
      return false;
    const RegionRecord& region = metadata_.regions[static_cast<size_t>(index)];
    const RegionSource& source = snapshot_.sources_[static_cast<size_t>(index)];
    uint64_t offset = address - region.map().start;
    if (offset > source.stored_bytes || out.size() > source.stored_bytes - offset)
      return false;
    std::memcpy(out.data(), bytes_.data() + source.core_offset + offset, out.size());
    return true;
  }

  // The build-id of the ELF file mapped at the region with file offset 0, from its program
  // headers and PT_NOTE segments in memory; "" when the core does not hold them.
  std::string buildIdFromMemory(const std::vector<size_t>& region_indexes) {
    const RegionRecord* first = nullptr;
    for (size_t index : region_indexes)
      if (metadata_.regions[index].map().offset == 0)
        first = &metadata_.regions[index];
    if (!first)
      return "";
    ElfFile::Elf_Ehdr header;
    if (!readStored(first->map().start, llvm::MutableArrayRef<uint8_t>(
                                            reinterpret_cast<uint8_t*>(&header), sizeof header)))
      return "";
    if (std::memcmp(header.e_ident,
                    "\x7f"
                    "ELF",
                    4) != 0 ||
        header.e_ident[llvm::ELF::EI_CLASS] != llvm::ELF::ELFCLASS64 ||
        header.e_phentsize != sizeof(Phdr) || header.e_phnum == 0 ||
        uint64_t{header.e_phnum} * sizeof(Phdr) > kMaxModuleHeaderBytes)
      return "";
    std::vector<Phdr> phdrs(header.e_phnum);
    if (!readStored(first->map().start + header.e_phoff,
                    llvm::MutableArrayRef<uint8_t>(reinterpret_cast<uint8_t*>(phdrs.data()),
                                                   phdrs.size() * sizeof(Phdr))))
      return "";
    for (const Phdr& phdr : phdrs) {
      if (phdr.p_type != llvm::ELF::PT_NOTE || phdr.p_filesz == 0 ||
          phdr.p_filesz > kMaxModuleHeaderBytes)
        continue;
      // Find the note through its file offset: the mapping covering that offset holds it.
      for (size_t index : region_indexes) {
        const MapsEntry& map = metadata_.regions[index].map();
        if (phdr.p_offset < map.offset || phdr.p_offset - map.offset >= map.size())
          continue;
        std::vector<uint8_t> notes(static_cast<size_t>(phdr.p_filesz));
        if (readStored(map.start + (phdr.p_offset - map.offset), notes)) {
          std::string id = buildIdInNotes(notes);
          if (!id.empty())
            return id;
        }
      }
    }
    return "";
  }

  bool startsWithElfMagic(const std::vector<size_t>& region_indexes) const {
    for (size_t index : region_indexes) {
      const RegionRecord& region = metadata_.regions[index];
      uint8_t magic[4];
      if (region.map().offset == 0 && readStored(region.map().start, magic))
        return std::memcmp(magic,
                           "\x7f"
                           "ELF",
                           4) == 0;
    }
    return false;
  }

  // One module per mapped file that is ELF (its first page says so) or executable.
  void buildModules() {
    std::map<std::string, std::vector<size_t>> by_path;
    std::vector<std::string> order;
    for (size_t i = 0; i < metadata_.regions.size(); ++i) {
      const RegionRecord& region = metadata_.regions[i];
      const MapsEntry& map = region.map();
      if (map.path.empty() || map.isPseudo() || region.kind == RegionKind::SharedAnon)
        continue;
      auto [it, inserted] = by_path.try_emplace(map.path);
      if (inserted)
        order.push_back(map.path);
      it->second.push_back(i);
    }
    for (const std::string& path : order) {
      const std::vector<size_t>& indexes = by_path[path];
      bool executable = std::any_of(indexes.begin(), indexes.end(), [&](size_t i) {
        return metadata_.regions[i].map().perms.execute;
      });
      if (!executable && !startsWithElfMagic(indexes))
        continue;
      ModuleRecord module;
      module.path = path;
      module.build_id_memory = buildIdFromMemory(indexes);
      module.build_id = module.build_id_memory;
      module.load_address = metadata_.regions[indexes.front()].map().start;
      module.deleted = metadata_.regions[indexes.front()].map().deleted;
      module.source = "core";
      metadata_.modules.push_back(std::move(module));
      module_regions_.push_back(indexes);
    }
  }

  // The module's file on this host with the build-id the core's memory names, or "".
  std::string locateModuleFile(const ModuleRecord& module, std::vector<std::string>& problems) {
    std::vector<std::string> candidates;
    if (options_.use_original_paths && llvm::StringRef(module.path).starts_with("/"))
      candidates.push_back(module.path);
    if (!options_.sysroot.empty()) {
      llvm::SmallString<256> path(options_.sysroot);
      llvm::sys::path::append(path, module.path);
      candidates.push_back(std::string(path));
    }
    if (module.build_id.size() > 2) {
      for (const std::string& dir : options_.debug_dirs) {
        // Fedora's layout links DIR/.build-id/xx/rest to the binary itself (not .debug).
        llvm::SmallString<256> path(dir);
        llvm::sys::path::append(path, ".build-id", llvm::StringRef(module.build_id).take_front(2),
                                llvm::StringRef(module.build_id).drop_front(2));
        candidates.push_back(std::string(path));
      }
    }
    for (const std::string& candidate : candidates) {
      if (!llvm::sys::fs::exists(candidate))
        continue;
      auto summary = summarizeElfFile(candidate);
      if (!summary) {
        problems.push_back(llvm::toString(summary.takeError()));
        continue;
      }
      if (summary->build_id != module.build_id) {
        problems.push_back("'" + candidate + "' has build-id " +
                           (summary->build_id.empty() ? "none" : summary->build_id));
        continue;
      }
      return candidate;
    }
    return "";
  }

  // Pages the core leaves out of a module's mappings, read from the module's file when its
  // build-id matches. Permissions of mappings the core has no program header for come from
  // the file's PT_LOAD covering their offset.
  void fillFromFiles() {
    for (size_t m = 0; m < metadata_.modules.size(); ++m) {
      ModuleRecord& module = metadata_.modules[m];
      const std::vector<size_t>& indexes = module_regions_[m];
      bool lacks_pages = std::any_of(indexes.begin(), indexes.end(), [&](size_t i) {
        const auto& pages = metadata_.regions[i].pages;
        return pages.empty() || pages.back().state == PageState::ExcludedFilter;
      });
      if (!lacks_pages)
        continue;
      if (module.build_id.empty()) {
        warn("module '" + module.path +
             "': the core leaves out some of its pages and holds "
             "no build-id to check a file against; those pages read as zeros");
        continue;
      }
      std::vector<std::string> problems;
      std::string file = locateModuleFile(module, problems);
      if (file.empty()) {
        warn("module '" + module.path + "' (build-id " + module.build_id +
             "): the core leaves out some of its pages and no file with that build-id was "
             "found" +
             (problems.empty() ? std::string() : ": " + problems.front()) +
             "; those pages read as zeros");
        continue;
      }
      auto buffer = readRegularFile(file);
      if (!buffer) {
        warn("cannot read '" + file + "': " + buffer.getError().message());
        continue;
      }
      // Only the program headers are needed (permissions of mappings the core lacks): no
      // symbol tables are parsed here.
      std::vector<Phdr> segments;
      if (auto elf = ElfFile::create((*buffer)->getBuffer())) {
        if (auto phdrs = elf->program_headers())
          segments.assign(phdrs->begin(), phdrs->end());
        else
          llvm::consumeError(phdrs.takeError());
      } else {
        llvm::consumeError(elf.takeError());
      }
      const uint64_t file_size = (*buffer)->getBufferSize();
      const uint64_t page = metadata_.host.page_size;
      int file_index = static_cast<int>(snapshot_.contents_files_.size());
      bool used = false;
      for (size_t index : indexes) {
        RegionRecord& region = metadata_.regions[index];
        const MapsEntry& map = region.map();
        if (note_only_.count(index)) {
          for (const Phdr& segment : segments) {
            if (segment.p_type == llvm::ELF::PT_LOAD &&
                map.offset >= llvm::alignDown(uint64_t{segment.p_offset}, page) &&
                map.offset < segment.p_offset + segment.p_filesz) {
              region.smaps.map.perms.read = (segment.p_flags & llvm::ELF::PF_R) != 0;
              region.smaps.map.perms.write = (segment.p_flags & llvm::ELF::PF_W) != 0;
              region.smaps.map.perms.execute = (segment.p_flags & llvm::ELF::PF_X) != 0;
              region.note = "the core has no program header for this mapping (permissions "
                            "from the module's program headers)";
              break;
            }
          }
        }
        if (region.pages.empty() || region.pages.back().state != PageState::ExcludedFilter)
          continue;
        PageRun excluded = region.pages.back();
        region.pages.pop_back();
        // Past the end of the file the process would get SIGBUS: those pages stay excluded.
        uint64_t file_end_address =
            map.offset >= file_size
                ? map.start
                : map.start +
                      std::min<uint64_t>(map.size(), llvm::alignTo(file_size - map.offset, page));
        uint64_t split = std::clamp(file_end_address, excluded.start, excluded.end);
        if (split > excluded.start)
          region.pages.push_back({excluded.start, split, PageState::FromFile});
        if (excluded.end > split)
          region.pages.push_back({split, excluded.end, PageState::ExcludedFilter});
        RegionSource& source = snapshot_.sources_[index];
        source.contents_file = file_index;
        source.file_offset = map.offset;
        if (region.note.empty())
          region.note = "pages the core leaves out are read from '" + file + "'";
        used = true;
      }
      if (used) {
        module.source = "core+file";
        snapshot_.contents_files_.push_back({file, std::move(*buffer)});
      }
    }
    // Kinds may change with the permissions learned from the files.
    classify();
  }

  void finishStats() {
    CaptureStats& stats = metadata_.stats;
    stats.threads = static_cast<uint32_t>(metadata_.threads.size());
    for (const RegionRecord& region : metadata_.regions) {
      for (const PageRun& run : region.pages) {
        if (run.state == PageState::Stored)
          stats.bytes_stored += run.end - run.start;
        else
          stats.bytes_skipped[std::string(toString(run.state))] += run.end - run.start;
      }
    }
    stats.bytes_compressed = 0; // no archive chunks: info then prints no compression ratio
    metadata_.host.machine = "x86_64";
    metadata_.tool_version = "";
  }

  CoreSnapshot& snapshot_;
  const OpenOptions& options_;
  SnapshotMetadata& metadata_;
  llvm::ArrayRef<uint8_t> bytes_;
  std::vector<Load> loads_;
  std::map<uint64_t, FileEntry> files_; // NT_FILE by start address
  std::set<size_t> note_only_;          // regions NT_FILE lists without a PT_LOAD
  std::vector<std::vector<size_t>> module_regions_;
  int current_thread_ = -1;
  bool has_psinfo_ = false;
  std::optional<int32_t> first_ppid_;
};

llvm::Expected<std::unique_ptr<CoreSnapshot>> CoreSnapshot::open(llvm::StringRef path,
                                                                 const OpenOptions& options) {
  auto opened = openPossiblyCompressed(path);
  if (!opened)
    return opened.takeError();
  return create(path.str(), std::move(opened->buffer), opened->compression, options);
}

llvm::Expected<std::unique_ptr<CoreSnapshot>>
CoreSnapshot::create(std::string path, std::unique_ptr<llvm::MemoryBuffer> core,
                     Compression compression, const OpenOptions& options) {
  std::unique_ptr<CoreSnapshot> snapshot(new CoreSnapshot());
  snapshot->path_ = std::move(path);
  snapshot->compression_ = compression;
  snapshot->core_ = std::move(core);
  Parser parser(*snapshot, options);
  if (llvm::Error error = parser.run())
    return error;
  return snapshot;
}

CoreSnapshot::~CoreSnapshot() = default;

llvm::StringRef CoreSnapshot::contentsFile(size_t region_index) const {
  if (region_index >= sources_.size() || sources_[region_index].contents_file < 0)
    return "";
  return contents_files_[static_cast<size_t>(sources_[region_index].contents_file)].path;
}

llvm::Expected<ReadResult> CoreSnapshot::read(uint64_t address,
                                              llvm::MutableArrayRef<uint8_t> out) const {
  const uint8_t* core = reinterpret_cast<const uint8_t*>(core_->getBufferStart());
  auto copy = [&](int index, PageState state, uint64_t start, uint64_t stop, uint8_t* target,
                  ReadResult& result) -> llvm::Error {
    const RegionSource& source = sources_[static_cast<size_t>(index)];
    const uint64_t offset = start - metadata_.regions[static_cast<size_t>(index)].map().start;
    if (state == PageState::Stored) {
      // Parsing clipped Stored runs to the core's size.
      std::memcpy(target, core + source.core_offset + offset, stop - start);
      result.bytes_stored += stop - start;
    } else if (state == PageState::FromFile && source.contents_file >= 0) {
      const llvm::MemoryBuffer& file =
          *contents_files_[static_cast<size_t>(source.contents_file)].bytes;
      const uint64_t file_offset = source.file_offset + offset;
      if (file_offset < file.getBufferSize())
        std::memcpy(target, file.getBufferStart() + file_offset,
                    std::min<uint64_t>(stop - start, file.getBufferSize() - file_offset));
    }
    result.addRun(start, stop, true, state, index);
    return llvm::Error::success();
  };
  return readByPageRuns(metadata_, address, out, copy);
}

std::vector<StoredExtent> CoreSnapshot::storedExtents(uint64_t start, uint64_t end) const {
  std::vector<StoredExtent> extents;
  const auto& regions = metadata_.regions;
  auto it = std::upper_bound(
      regions.begin(), regions.end(), start,
      [](uint64_t value, const RegionRecord& region) { return value < region.map().end; });
  for (; it != regions.end() && it->map().start < end; ++it) {
    for (const PageRun& run : it->pages) {
      if (!holdsBytes(run.state))
        continue;
      uint64_t from = std::max(start, run.start);
      uint64_t to = std::min(end, run.end);
      if (from >= to)
        continue;
      if (!extents.empty() && extents.back().end == from)
        extents.back().end = to;
      else
        extents.push_back({from, to});
    }
  }
  return extents;
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
CoreSnapshot::moduleImage(size_t /*module_index*/) const {
  return nullptr;
}

} // namespace procsnap::analyze

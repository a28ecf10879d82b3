#include "analyze/sources/core_notes.h"

#include <cstring>
#include <sys/procfs.h>

namespace procsnap::analyze::core {

// The layouts above are written out so the header stays free of system ELF headers; here they
// are checked against glibc's own definitions of the same structures.
static_assert(sizeof(struct elf_prstatus) == sizeof(CorePrStatus));
static_assert(offsetof(struct elf_prstatus, pr_cursig) == offsetof(CorePrStatus, pr_cursig));
static_assert(offsetof(struct elf_prstatus, pr_sigpend) == offsetof(CorePrStatus, pr_sigpend));
static_assert(offsetof(struct elf_prstatus, pr_pid) == offsetof(CorePrStatus, pr_pid));
static_assert(offsetof(struct elf_prstatus, pr_sid) == offsetof(CorePrStatus, pr_sid));
static_assert(offsetof(struct elf_prstatus, pr_utime) == offsetof(CorePrStatus, pr_utime));
static_assert(offsetof(struct elf_prstatus, pr_reg) == offsetof(CorePrStatus, pr_reg));
static_assert(offsetof(struct elf_prstatus, pr_fpvalid) == offsetof(CorePrStatus, pr_fpvalid));
static_assert(sizeof(elf_gregset_t) == kUserRegsSize);
static_assert(sizeof(struct elf_prpsinfo) == sizeof(CorePrPsInfo));
static_assert(offsetof(struct elf_prpsinfo, pr_flag) == offsetof(CorePrPsInfo, pr_flag));
static_assert(offsetof(struct elf_prpsinfo, pr_uid) == offsetof(CorePrPsInfo, pr_uid));
static_assert(offsetof(struct elf_prpsinfo, pr_pid) == offsetof(CorePrPsInfo, pr_pid));
static_assert(offsetof(struct elf_prpsinfo, pr_fname) == offsetof(CorePrPsInfo, pr_fname));
static_assert(offsetof(struct elf_prpsinfo, pr_psargs) == offsetof(CorePrPsInfo, pr_psargs));
static_assert(sizeof(((struct elf_prpsinfo*)nullptr)->pr_psargs) == kPrPsArgsSize);
static_assert(sizeof(struct user_fpregs_struct) == 512);

namespace {

size_t alignNote(size_t size) {
  return (size + kNoteAlignment - 1) / kNoteAlignment * kNoteAlignment;
}

void appendBytes(std::vector<std::byte>& out, const void* data, size_t size) {
  // resize + memcpy rather than insert: GCC 12 at -O3 reports a false -Wstringop-overflow
  // for vector::insert from a small local.
  const size_t at = out.size();
  out.resize(at + size);
  if (size != 0)
    std::memcpy(out.data() + at, data, size);
}

void appendU32(std::vector<std::byte>& out, uint32_t value) {
  appendBytes(out, &value, 4);
}
void appendU64(std::vector<std::byte>& out, uint64_t value) {
  appendBytes(out, &value, 8);
}

void padTo(std::vector<std::byte>& out, size_t start, size_t size) {
  out.resize(start + alignNote(size), std::byte{0});
}

} // namespace

std::string_view ownerForNoteType(uint32_t note_type) {
  switch (note_type) {
  case kNtPrStatus:
  case kNtPrFpReg:
  case kNtPrPsInfo:
  case kNtAuxv:
  case kNtSigInfo:
  case kNtFile:
    return kOwnerCore;
  default:
    return kOwnerLinux;
  }
}

std::string_view noteTypeName(std::string_view owner, uint32_t note_type) {
  if (owner != kOwnerCore && owner != kOwnerLinux)
    return "";
  switch (note_type) {
  case kNtPrStatus:
    return "NT_PRSTATUS";
  case kNtPrFpReg:
    return "NT_PRFPREG";
  case kNtPrPsInfo:
    return "NT_PRPSINFO";
  case kNtAuxv:
    return "NT_AUXV";
  case kNtSigInfo:
    return "NT_SIGINFO";
  case kNtFile:
    return "NT_FILE";
  case kNtX86Xstate:
    return "NT_X86_XSTATE";
  case kNtX86Shstk:
    return "NT_X86_SHSTK";
  case kNtX86XsaveLayout:
    return "NT_X86_XSAVE_LAYOUT";
  default:
    return "";
  }
}

void setPrPsInfoState(CorePrPsInfo& info, char state_letter) {
  // The kernel sets pr_state to the bit index + 1 of the task state and pr_sname to
  // "RSDTZW"[pr_state] (or '.' beyond it); the State letter of /proc/PID/status is the same
  // letter, so invert the table.
  static constexpr std::string_view kLetters = "RSDTZW";
  size_t index = kLetters.find(state_letter);
  info.pr_state = index == std::string_view::npos ? 0 : static_cast<char>(index);
  info.pr_sname = state_letter == 0 ? '.' : state_letter;
  info.pr_zomb = state_letter == 'Z' ? 1 : 0;
}

std::vector<std::byte> encodeFileNote(const std::vector<FileMapping>& mappings,
                                      uint64_t page_size) {
  std::vector<std::byte> out;
  appendU64(out, mappings.size());
  appendU64(out, page_size);
  for (const FileMapping& mapping : mappings) {
    appendU64(out, mapping.start);
    appendU64(out, mapping.end);
    appendU64(out, mapping.page_offset);
  }
  for (const FileMapping& mapping : mappings) {
    appendBytes(out, mapping.name.data(), mapping.name.size());
    out.push_back(std::byte{0});
  }
  return out;
}

size_t noteSize(std::string_view owner, size_t descriptor_size) {
  // n_namesz counts the terminating NUL.
  return 12 + alignNote(owner.size() + 1) + alignNote(descriptor_size);
}

void appendNote(std::vector<std::byte>& out, std::string_view owner, uint32_t type,
                const void* descriptor, size_t descriptor_size) {
  appendU32(out, static_cast<uint32_t>(owner.size() + 1));
  appendU32(out, static_cast<uint32_t>(descriptor_size));
  appendU32(out, type);
  size_t name_start = out.size();
  appendBytes(out, owner.data(), owner.size());
  out.push_back(std::byte{0});
  padTo(out, name_start, owner.size() + 1);
  size_t descriptor_start = out.size();
  if (descriptor_size > 0)
    appendBytes(out, descriptor, descriptor_size);
  padTo(out, descriptor_start, descriptor_size);
}

} // namespace procsnap::analyze::core

// The notes of an x86-64 Linux ELF core file, byte for byte as the kernel writes them
// (fs/binfmt_elf.c, <sys/procfs.h>): note types and owner names, the layouts of NT_PRSTATUS
// and NT_PRPSINFO, and the NT_FILE table. Shared by the core writer (export-core) and the core
// reader, so both agree on one layout. Plain std types only: no <elf.h> and no LLVM ELF
// headers, which cannot share a translation unit (their constants clash as macros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace procsnap::analyze::core {

// Note types (n_type). NT_PRPSINFO (3) equals NT_GNU_BUILD_ID: always check the owner name.
inline constexpr uint32_t kNtPrStatus = 1;
inline constexpr uint32_t kNtPrFpReg = 2; // NT_FPREGSET: struct user_fpregs_struct
inline constexpr uint32_t kNtPrPsInfo = 3;
inline constexpr uint32_t kNtAuxv = 6;
inline constexpr uint32_t kNtSigInfo = 0x53494749; // "SIGI"
inline constexpr uint32_t kNtFile = 0x46494c45;    // "FILE"
inline constexpr uint32_t kNtX86Xstate = 0x202;
inline constexpr uint32_t kNtX86Shstk = 0x204;
inline constexpr uint32_t kNtX86XsaveLayout = 0x205;

// Owner names: "CORE" for the notes every architecture has, "LINUX" for the rest (the
// x86 register sets beyond the FPU state).
inline constexpr std::string_view kOwnerCore = "CORE";
inline constexpr std::string_view kOwnerLinux = "LINUX";
// The owner the kernel writes for a register set of this note type.
std::string_view ownerForNoteType(uint32_t note_type);
// "NT_PRSTATUS", "NT_X86_XSTATE", ... for the notes of a core (owner "CORE" or "LINUX"); ""
// when unknown.
std::string_view noteTypeName(std::string_view owner, uint32_t note_type);

// Name and descriptor of 64-bit core notes are padded to 4 bytes (the kernel's notesize()).
inline constexpr size_t kNoteAlignment = 4;

// struct user_regs_struct: what PTRACE_GETREGSET(NT_PRSTATUS) returns on x86-64.
inline constexpr size_t kUserRegsWords = 27;
inline constexpr size_t kUserRegsSize = kUserRegsWords * 8;
inline constexpr size_t kUserRegsRipIndex = 16;
inline constexpr size_t kUserRegsRspIndex = 19;

struct CoreTimeval {
  int64_t tv_sec = 0;
  int64_t tv_usec = 0;
};

// struct elf_prstatus (x86-64), 336 bytes. pr_reg is the user_regs_struct.
struct CorePrStatus {
  int32_t si_signo = 0; // struct elf_siginfo
  int32_t si_code = 0;
  int32_t si_errno = 0;
  int16_t pr_cursig = 0;
  uint16_t padding0 = 0;
  uint64_t pr_sigpend = 0;
  uint64_t pr_sighold = 0;
  int32_t pr_pid = 0; // the thread's id
  int32_t pr_ppid = 0;
  int32_t pr_pgrp = 0;
  int32_t pr_sid = 0;
  CoreTimeval pr_utime;
  CoreTimeval pr_stime;
  CoreTimeval pr_cutime;
  CoreTimeval pr_cstime;
  uint64_t pr_reg[kUserRegsWords] = {};
  int32_t pr_fpvalid = 0; // 1 when an NT_PRFPREG note follows
  uint32_t padding1 = 0;
};
static_assert(sizeof(CorePrStatus) == 336);
static_assert(offsetof(CorePrStatus, pr_pid) == 32);
static_assert(offsetof(CorePrStatus, pr_reg) == 112);
static_assert(offsetof(CorePrStatus, pr_fpvalid) == 328);

inline constexpr size_t kPrFnameSize = 16;  // comm, NUL-padded
inline constexpr size_t kPrPsArgsSize = 80; // ELF_PRARGSZ: the command line, truncated

// struct elf_prpsinfo (x86-64), 136 bytes.
struct CorePrPsInfo {
  char pr_state = 0; // index of pr_sname in "RSDTZW"
  char pr_sname = 0; // the State letter of /proc/PID/status
  char pr_zomb = 0;
  char pr_nice = 0;
  uint32_t padding0 = 0;
  uint64_t pr_flag = 0;
  uint32_t pr_uid = 0;
  uint32_t pr_gid = 0;
  int32_t pr_pid = 0;
  int32_t pr_ppid = 0;
  int32_t pr_pgrp = 0;
  int32_t pr_sid = 0;
  char pr_fname[kPrFnameSize] = {};
  char pr_psargs[kPrPsArgsSize] = {};
};
static_assert(sizeof(CorePrPsInfo) == 136);
static_assert(offsetof(CorePrPsInfo, pr_uid) == 16);
static_assert(offsetof(CorePrPsInfo, pr_fname) == 40);

// pr_state and pr_sname from the State letter ('R', 'S', 'D', 'T', 'Z', ...), as the kernel
// derives them from the task state.
void setPrPsInfoState(CorePrPsInfo& info, char state_letter);

// One mapped file of NT_FILE. The table is: u64 count, u64 page size, count x {u64 start,
// u64 end, u64 file offset in pages}, then count NUL-terminated names (with " (deleted)"
// when the kernel printed it), in the same order.
struct FileMapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t page_offset = 0; // file offset / page size
  std::string name;
};
std::vector<std::byte> encodeFileNote(const std::vector<FileMapping>& mappings, uint64_t page_size);

// Appends one note (header, owner name, descriptor, each padded to kNoteAlignment) to out.
void appendNote(std::vector<std::byte>& out, std::string_view owner, uint32_t type,
                const void* descriptor, size_t descriptor_size);
// Bytes appendNote adds for a note of this owner and descriptor size.
size_t noteSize(std::string_view owner, size_t descriptor_size);

} // namespace procsnap::analyze::core

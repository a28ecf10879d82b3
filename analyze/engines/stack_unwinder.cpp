// libdwfl side of the unwinder: this file includes <elf.h> (through libdwfl.h) and must never
// include LLVM's object or ELF headers.
#include "analyze/engines/stack_unwinder.h"

#include "analyze/output/printer.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace procsnap::analyze {

llvm::StringRef toString(FrameTrust trust) {
  switch (trust) {
  case FrameTrust::Context:
    return "context";
  case FrameTrust::Cfi:
    return "cfi";
  case FrameTrust::FramePointer:
    return "frame-pointer";
  case FrameTrust::Scan:
    return "scan";
  }
  return "unknown";
}

namespace {

// DWARF register numbers on x86-64 (System V psABI): rax rdx rcx rbx rsi rdi rbp rsp r8-r15,
// then the return address column (rip).
constexpr int kDwarfRegisters = 17;
constexpr int kDwarfRbp = 6;
constexpr int kDwarfRsp = 7;
constexpr int kDwarfRip = 16;
// Where each DWARF register sits in struct user_regs_struct (PTRACE_GETREGSET NT_PRSTATUS).
constexpr std::array<size_t, kDwarfRegisters> kUserRegsIndexOfDwarf = {
    10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16};
constexpr size_t kUserRegsBytes = 27 * 8;
constexpr uint32_t kNtPrStatus = 1;
// Callee-saved registers survive a frame-pointer or scan step unchanged as far as we know:
// rbx, rbp, r12-r15.
constexpr std::array<int, 6> kCalleeSaved = {3, 6, 12, 13, 14, 15};
// libdwfl's thread id for every walk: the registers it starts from are the session's.
constexpr pid_t kWalkTid = 1;
constexpr size_t kPageSize = 4096;
// Pages of memory kept between reads (stack words, code bytes): 2 MiB at most.
constexpr size_t kPageCacheLimit = 512;

struct Registers {
  std::array<uint64_t, kDwarfRegisters> value{};
  std::array<bool, kDwarfRegisters> known{};

  std::optional<uint64_t> get(int regno) const {
    if (!known[static_cast<size_t>(regno)])
      return std::nullopt;
    return value[static_cast<size_t>(regno)];
  }
  void set(int regno, uint64_t v) {
    value[static_cast<size_t>(regno)] = v;
    known[static_cast<size_t>(regno)] = true;
  }
};

// Reads of the snapshot by page, cached: libdwfl asks for one word at a time.
class MemoryReader {
public:
  explicit MemoryReader(const Snapshot& snapshot) : snapshot_(snapshot) {}

  // Fills out when every byte of [address, address + out.size()) is stored.
  bool read(uint64_t address, uint8_t* out, size_t size) {
    while (size > 0) {
      uint64_t page = address & ~(kPageSize - 1);
      const Page* cached = fetch(page);
      if (!cached || !cached->stored)
        return false;
      size_t offset = static_cast<size_t>(address - page);
      size_t piece = std::min(size, kPageSize - offset);
      std::memcpy(out, cached->bytes.data() + offset, piece);
      out += piece;
      size -= piece;
      if (address + piece < address)
        return false; // wrapped around the top of the address space
      address += piece;
    }
    return true;
  }
  bool readWord(uint64_t address, uint64_t& value) {
    return read(address, reinterpret_cast<uint8_t*>(&value), sizeof value);
  }
  bool isExecutable(uint64_t address) const {
    int region = snapshot_.findRegion(address);
    return region >= 0 &&
           snapshot_.metadata().regions[static_cast<size_t>(region)].map().perms.execute;
  }
  // The region holding address, -1 outside all.
  int regionOf(uint64_t address) const { return snapshot_.findRegion(address); }
  llvm::Error takeError() { return std::move(error_); }
  bool failed() const { return failed_; }

private:
  struct Page {
    std::array<uint8_t, kPageSize> bytes{};
    bool stored = false;
  };
  const Page* fetch(uint64_t page) {
    auto found = pages_.find(page);
    if (found != pages_.end())
      return &found->second;
    if (pages_.size() >= kPageCacheLimit)
      pages_.clear();
    Page& entry = pages_[page];
    auto result = snapshot_.read(page, llvm::MutableArrayRef<uint8_t>(entry.bytes));
    if (!result) {
      // A damaged source: the page reads as missing; the first error is kept for a warning.
      if (!failed_)
        error_ = result.takeError();
      else
        llvm::consumeError(result.takeError());
      failed_ = true;
      return &entry;
    }
    entry.stored = result->allStored();
    return &entry;
  }

  const Snapshot& snapshot_;
  std::unordered_map<uint64_t, Page> pages_;
  llvm::Error error_ = llvm::Error::success();
  bool failed_ = false;
};

// True when the bytes just before return_address end with a call instruction: e8 rel32, or
// ff /2 (an indirect call, optionally with a REX prefix) of 2 to 7 bytes. This is what makes a
// stack word a plausible return address rather than any pointer into code.
bool followsCall(MemoryReader& memory, uint64_t return_address) {
  if (return_address < 8)
    return false;
  std::array<uint8_t, 8> code{};
  if (!memory.read(return_address - code.size(), code.data(), code.size()))
    return false;
  if (code[3] == 0xe8)
    return true;
  for (size_t length = 2; length <= 7; ++length) {
    size_t at = code.size() - length;
    if (code[at] == 0xff && ((code[at + 1] >> 3) & 7) == 2)
      return true;
  }
  return false;
}

struct Session;

// One libdwfl walk from the session's registers, collecting frames after the first.
struct Walk {
  Session* session = nullptr;
  UnwoundThread* thread = nullptr;
  bool first = true;
  bool stopped = false; // the callback ended the walk (stop_reason set)
  Registers last;       // registers of the newest frame, as far as libdwfl knows them
};

struct Session {
  const Snapshot& snapshot;
  const UnwindOptions& options;
  MemoryReader memory;
  Dwfl* dwfl = nullptr;
  Registers start; // the registers the next walk starts from
  bool attached = false;

  Session(const Snapshot& s, const UnwindOptions& o) : snapshot(s), options(o), memory(s) {}
  ~Session() {
    if (dwfl)
      dwfl_end(dwfl);
  }

  // Whether CFI covers pc (looked up at pc - 1 for a return address): libdwfl 0.188 falls back
  // to a frame-pointer step of its own without saying so, and this tells the two apart.
  bool hasCfi(uint64_t pc, bool activation) {
    uint64_t lookup = activation ? pc : pc - 1;
    Dwfl_Module* module = dwfl_addrmodule(dwfl, lookup);
    if (!module)
      return false;
    for (int kind = 0; kind < 2; ++kind) {
      Dwarf_Addr bias = 0;
      Dwarf_CFI* cfi =
          kind == 0 ? dwfl_module_eh_cfi(module, &bias) : dwfl_module_dwarf_cfi(module, &bias);
      if (!cfi)
        continue;
      Dwarf_Frame* frame = nullptr;
      if (dwarf_cfi_addrframe(cfi, lookup - bias, &frame) == 0) {
        free(frame);
        return true;
      }
    }
    return false;
  }
};

// --- libdwfl callbacks -------------------------------------------------------------------

int findElf(Dwfl_Module*, void** userdata, const char*, Dwarf_Addr, char**, Elf** elfp) {
  const auto* image = static_cast<const UnwindImage*>(*userdata);
  // libelf only reads a native-endian image it did not allocate; libdwfl owns the Elf.
  *elfp = elf_memory(const_cast<char*>(reinterpret_cast<const char*>(image->elf.data())),
                     image->elf.size());
  return -1;
}

// Separate debug files are not searched: names and lines come from the symbolizer, and the
// host's /usr/lib/debug must not leak into the CFI of an unrelated snapshot.
int findNoDebuginfo(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*,
                    GElf_Word, char**) {
  return -1;
}

pid_t nextThread(Dwfl*, void* dwfl_arg, void** thread_argp) {
  if (*thread_argp)
    return 0;
  *thread_argp = dwfl_arg;
  return kWalkTid;
}

bool getThread(Dwfl*, pid_t tid, void* dwfl_arg, void** thread_argp) {
  *thread_argp = dwfl_arg;
  return tid == kWalkTid;
}

bool memoryRead(Dwfl*, Dwarf_Addr address, Dwarf_Word* result, void* dwfl_arg) {
  auto* session = static_cast<Session*>(dwfl_arg);
  uint64_t value = 0;
  if (!session->memory.readWord(address, value))
    return false;
  *result = value;
  return true;
}

bool setInitialRegisters(Dwfl_Thread* thread, void* thread_arg) {
  auto* session = static_cast<Session*>(thread_arg);
  const Registers& regs = session->start;
  for (int regno = 0; regno < kDwarfRegisters; ++regno) {
    if (!regs.known[static_cast<size_t>(regno)])
      continue;
    Dwarf_Word value = regs.value[static_cast<size_t>(regno)];
    if (!dwfl_thread_state_registers(thread, regno, 1, &value))
      return false;
  }
  dwfl_thread_state_register_pc(thread, regs.value[kDwarfRip]);
  return true;
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    nextThread, getThread, memoryRead, setInitialRegisters, nullptr, nullptr,
};

char* no_debuginfo_path = nullptr;
const Dwfl_Callbacks kDwflCallbacks = {
    findElf,
    findNoDebuginfo,
    dwfl_offline_section_address,
    &no_debuginfo_path,
};

// Ends the thread's walk with reason. complete: the stack ends there by its own account.
void stop(UnwoundThread& thread, std::string reason, bool complete = false) {
  thread.stop_reason = std::move(reason);
  thread.complete = complete;
}

// A new frame passes the checks every unwinding method shares; otherwise the walk stops.
bool acceptFrame(Session& session, UnwoundThread& thread, const UnwoundFrame& frame,
                 bool after_signal) {
  if (thread.frames.size() >= session.options.max_frames) {
    stop(thread, "frame limit (" + std::to_string(session.options.max_frames) + ")");
    return false;
  }
  if (frame.pc == 0) {
    stop(thread, "end of stack", /*complete=*/true);
    return false;
  }
  const UnwoundFrame& previous = thread.frames.back();
  // A signal handler may run on an alternate stack: the interrupted frame's SP can be lower.
  if (!after_signal && frame.sp != 0 && previous.sp != 0 && frame.sp <= previous.sp) {
    stop(thread, "non-increasing stack pointer at " + hexString(frame.pc));
    return false;
  }
  if (!session.memory.isExecutable(frame.activation ? frame.pc : frame.pc - 1)) {
    stop(thread, "pc " + hexString(frame.pc) + " outside executable mappings");
    return false;
  }
  return true;
}

int onFrame(Dwfl_Frame* state, void* arg) {
  Walk& walk = *static_cast<Walk*>(arg);
  Session& session = *walk.session;
  UnwoundThread& thread = *walk.thread;
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(state, &pc, &activation))
    return DWARF_CB_ABORT; // libdwfl's error: the fallbacks take over
  Registers regs;
  for (int regno = 0; regno < kDwarfRegisters; ++regno) {
    Dwarf_Word value = 0;
    if (dwfl_frame_reg(state, static_cast<unsigned>(regno), &value) == 0)
      regs.set(regno, value);
  }
  regs.set(kDwarfRip, pc);
  if (walk.first) {
    // The frame the walk started from, already recorded.
    walk.first = false;
    walk.last = regs;
    return DWARF_CB_OK;
  }
  UnwoundFrame frame;
  frame.pc = pc;
  frame.sp = regs.get(kDwarfRsp).value_or(0);
  // libdwfl marks the frame after a signal frame as an activation: its PC is exact.
  frame.activation = activation;
  UnwoundFrame& previous = thread.frames.back();
  bool after_signal = activation;
  frame.trust =
      session.hasCfi(previous.pc, previous.activation) ? FrameTrust::Cfi : FrameTrust::FramePointer;
  // libdwfl's own frame-pointer step is not validated: hold it to the call-site check, or let
  // the fallbacks below decide.
  if (frame.trust == FrameTrust::FramePointer && !followsCall(session.memory, frame.pc))
    return DWARF_CB_ABORT;
  if (!acceptFrame(session, thread, frame, after_signal)) {
    walk.stopped = true;
    return DWARF_CB_ABORT;
  }
  if (after_signal)
    previous.signal_trampoline = true;
  thread.frames.push_back(frame);
  walk.last = regs;
  return DWARF_CB_OK;
}

// --- fallbacks ---------------------------------------------------------------------------

// The caller of a frame through its saved rbp: [rbp] is the caller's rbp, [rbp + 8] the return
// address. Only when rbp lies in the stack above sp and the return address follows a call.
std::optional<Registers> framePointerStep(Session& session, const Registers& regs) {
  auto rbp = regs.get(kDwarfRbp);
  auto rsp = regs.get(kDwarfRsp);
  if (!rbp || !rsp || *rbp % 8 != 0 || *rbp < *rsp)
    return std::nullopt;
  if (session.memory.regionOf(*rbp) != session.memory.regionOf(*rsp))
    return std::nullopt;
  uint64_t saved_rbp = 0, return_address = 0;
  if (!session.memory.readWord(*rbp, saved_rbp) ||
      !session.memory.readWord(*rbp + 8, return_address))
    return std::nullopt;
  if (!session.memory.isExecutable(return_address - 1) ||
      !followsCall(session.memory, return_address))
    return std::nullopt;
  Registers caller;
  for (int regno : kCalleeSaved)
    if (auto value = regs.get(regno))
      caller.set(regno, *value);
  caller.set(kDwarfRbp, saved_rbp);
  caller.set(kDwarfRsp, *rbp + 16);
  caller.set(kDwarfRip, return_address);
  return caller;
}

// The first stack word at or above sp that is a return address into an executable mapping.
std::optional<Registers> scanStep(Session& session, const Registers& regs) {
  auto rsp = regs.get(kDwarfRsp);
  if (!rsp || *rsp % 8 != 0)
    return std::nullopt;
  for (size_t i = 0; i < session.options.scan_words; ++i) {
    uint64_t address = *rsp + i * 8;
    uint64_t word = 0;
    if (address < *rsp || !session.memory.readWord(address, word))
      return std::nullopt;
    if (word < 8 || !session.memory.isExecutable(word - 1) || !followsCall(session.memory, word))
      continue;
    Registers caller;
    for (int regno : kCalleeSaved)
      if (auto value = regs.get(regno))
        caller.set(regno, *value);
    caller.set(kDwarfRsp, address + 8);
    caller.set(kDwarfRip, word);
    return caller;
  }
  return std::nullopt;
}

std::optional<Registers> initialRegisters(const ThreadRecord& record) {
  for (const RegisterSet& set : record.register_sets) {
    if (set.note_type != kNtPrStatus || set.bytes.size() < kUserRegsBytes)
      continue;
    Registers regs;
    for (int regno = 0; regno < kDwarfRegisters; ++regno) {
      uint64_t value = 0;
      std::memcpy(&value, set.bytes.data() + kUserRegsIndexOfDwarf[static_cast<size_t>(regno)] * 8,
                  sizeof value);
      regs.set(regno, value);
    }
    return regs;
  }
  return std::nullopt;
}

void unwindThread(Session& session, const ThreadRecord& record, UnwoundThread& thread) {
  auto context = initialRegisters(record);
  if (!context) {
    stop(thread, "no general registers in the snapshot");
    return;
  }
  UnwoundFrame top;
  top.pc = context->value[kDwarfRip];
  top.sp = context->value[kDwarfRsp];
  top.trust = FrameTrust::Context;
  thread.frames.push_back(top);
  if (session.options.max_frames <= 1) {
    stop(thread, "frame limit (" + std::to_string(session.options.max_frames) + ")");
    return;
  }
  Registers current = *context;
  session.start = *context;
  while (true) {
    if (session.attached) {
      Walk walk;
      walk.session = &session;
      walk.thread = &thread;
      walk.last = current;
      int rc = dwfl_getthread_frames(session.dwfl, kWalkTid, onFrame, &walk);
      if (walk.stopped)
        return;
      if (rc == 0) {
        stop(thread, "end of stack", /*complete=*/true);
        return;
      }
      current = walk.last;
      // The walk may have begun at PC - 1 (a return address): report the frame's own PC.
      current.set(kDwarfRip, thread.frames.back().pc);
    }
    FrameTrust trust = FrameTrust::FramePointer;
    std::optional<Registers> caller = framePointerStep(session, current);
    if (!caller) {
      trust = FrameTrust::Scan;
      caller = scanStep(session, current);
    }
    if (!caller) {
      stop(thread, "no unwind information, frame pointer or return address after " +
                       hexString(thread.frames.back().pc));
      return;
    }
    UnwoundFrame frame;
    frame.pc = caller->value[kDwarfRip];
    frame.sp = caller->value[kDwarfRsp];
    frame.activation = false;
    frame.trust = trust;
    if (!acceptFrame(session, thread, frame, /*after_signal=*/false))
      return;
    thread.frames.push_back(frame);
    current = *caller;
    // libdwfl looks CFI up at the PC of an initial frame as given: a return address goes in
    // as PC - 1 so that the lookup lands inside the calling function.
    session.start = *caller;
    session.start.set(kDwarfRip, frame.pc - 1);
  }
}

} // namespace

std::vector<UnwoundThread> unwindThreads(const Snapshot& snapshot,
                                         llvm::ArrayRef<UnwindImage> images,
                                         const UnwindOptions& options,
                                         std::vector<std::string>& warnings) {
  Session session(snapshot, options);
  elf_version(EV_CURRENT);
  session.dwfl = dwfl_begin(&kDwflCallbacks);
  if (session.dwfl) {
    dwfl_report_begin(session.dwfl);
    for (const UnwindImage& image : images) {
      if (image.elf.empty() || image.high <= image.low)
        continue;
      Dwfl_Module* module =
          dwfl_report_module(session.dwfl, image.name.c_str(), image.low, image.high);
      if (!module) {
        warnings.push_back("unwinding: module '" + image.name + "' not used: " + dwfl_errmsg(-1));
        continue;
      }
      void** userdata = nullptr;
      dwfl_module_info(module, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
      if (userdata)
        *userdata = const_cast<UnwindImage*>(&image);
    }
    dwfl_report_end(session.dwfl, nullptr, nullptr);
    session.attached = dwfl_attach_state(session.dwfl, nullptr, snapshot.metadata().process.pid,
                                         &kThreadCallbacks, &session);
    if (!session.attached)
      warnings.push_back(std::string("unwinding without CFI: libdwfl: ") + dwfl_errmsg(-1));
  }

  const std::vector<ThreadRecord>& records = snapshot.metadata().threads;
  std::vector<size_t> indices = options.thread_indices;
  if (indices.empty())
    for (size_t i = 0; i < records.size(); ++i)
      indices.push_back(i);
  std::vector<UnwoundThread> threads;
  for (size_t index : indices) {
    if (index >= records.size())
      continue;
    UnwoundThread& thread = threads.emplace_back();
    thread.thread_index = index;
    unwindThread(session, records[index], thread);
  }
  if (session.memory.failed())
    warnings.push_back("unwinding: " + llvm::toString(session.memory.takeError()));
  return threads;
}

} // namespace procsnap::analyze

#include "analyze/output/core_note_builder.h"

#include "analyze/sources/core_notes.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>

namespace procsnap::analyze {

namespace {

// The value of a /proc/PID/status field as captured, or "" when absent.
std::string_view statusField(const ProcessInfo& process, std::string_view key) {
  for (const auto& [name, value] : process.status)
    if (name == key)
      return value;
  return "";
}

// The first whitespace-separated number of a status value ("1234\t1" -> 1234); NSpgid and
// NSsid list the id in each nested namespace, outermost (the capturer's view) first.
std::optional<uint64_t> firstNumber(std::string_view value, int base = 10) {
  size_t begin = value.find_first_not_of(" \t");
  if (begin == std::string_view::npos)
    return std::nullopt;
  value.remove_prefix(begin);
  uint64_t number = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number, base);
  if (error != std::errc() || end == value.data())
    return std::nullopt;
  return number;
}

int32_t statusId(const ProcessInfo& process, std::string_view key) {
  return static_cast<int32_t>(firstNumber(statusField(process, key)).value_or(0));
}

uint64_t statusMask(const ProcessInfo& process, std::string_view key) {
  return firstNumber(statusField(process, key), 16).value_or(0);
}

template <typename Descriptor>
void addNote(CoreNotes& notes, std::string_view owner, uint32_t type, const Descriptor* descriptor,
             size_t size, int32_t tid) {
  core::appendNote(notes.bytes, owner, type, descriptor, size);
  notes.entries.push_back(CoreNoteEntry{std::string(owner), type, size, tid});
}

const RegisterSet* findRegisterSet(const ThreadRecord& thread, uint32_t type) {
  for (const RegisterSet& set : thread.register_sets)
    if (set.note_type == type)
      return &set;
  return nullptr;
}

core::CorePrStatus makePrStatus(const ThreadRecord& thread, const ProcessInfo& process,
                                bool main_thread, std::vector<std::string>& warnings) {
  core::CorePrStatus status;
  status.pr_pid = thread.tid;
  status.pr_ppid = process.ppid;
  status.pr_pgrp = statusId(process, "NSpgid");
  status.pr_sid = statusId(process, "NSsid");
  if (main_thread) {
    // /proc/PID/status shows the main thread's own pending and blocked sets; the other
    // threads' were not captured and stay empty.
    status.pr_sigpend = statusMask(process, "SigPnd");
    status.pr_sighold = statusMask(process, "SigBlk");
  }
  status.pr_fpvalid = findRegisterSet(thread, core::kNtPrFpReg) != nullptr ? 1 : 0;
  const RegisterSet* registers = findRegisterSet(thread, core::kNtPrStatus);
  if (registers == nullptr) {
    warnings.push_back("thread " + std::to_string(thread.tid) +
                       " has no general registers in the snapshot; its registers are zeros");
    return status;
  }
  if (registers->bytes.size() != core::kUserRegsSize)
    warnings.push_back("thread " + std::to_string(thread.tid) + " has " +
                       std::to_string(registers->bytes.size()) +
                       " bytes of general registers, expected " +
                       std::to_string(core::kUserRegsSize) + "; the rest are zeros");
  std::memcpy(status.pr_reg, registers->bytes.data(),
              std::min(registers->bytes.size(), sizeof status.pr_reg));
  return status;
}

core::CorePrPsInfo makePrPsInfo(const ProcessInfo& process) {
  core::CorePrPsInfo info;
  std::string_view state = statusField(process, "State");
  size_t letter = state.find_first_not_of(" \t");
  core::setPrPsInfoState(info, letter == std::string_view::npos ? 0 : state[letter]);
  info.pr_uid = process.uid[0]; // real ids, as the kernel writes them
  info.pr_gid = process.gid[0];
  info.pr_pid = process.pid;
  info.pr_ppid = process.ppid;
  info.pr_pgrp = statusId(process, "NSpgid");
  info.pr_sid = statusId(process, "NSsid");
  // Both fields stay NUL-terminated, like the kernel's (comm is at most 15 characters).
  std::string_view comm = process.comm;
  std::memcpy(info.pr_fname, comm.data(), std::min(comm.size(), core::kPrFnameSize - 1));
  std::string arguments;
  for (const std::string& argument : process.cmdline) {
    if (!arguments.empty())
      arguments += ' ';
    arguments += argument;
    if (arguments.size() >= core::kPrPsArgsSize)
      break;
  }
  std::replace(arguments.begin(), arguments.end(), '\0', ' ');
  std::memcpy(info.pr_psargs, arguments.data(),
              std::min(arguments.size(), core::kPrPsArgsSize - 1));
  return info;
}

std::vector<uint64_t> auxvWords(const ProcessInfo& process) {
  std::vector<uint64_t> words;
  for (const AuxvEntry& entry : process.auxv) {
    if (entry.type == 0)
      break; // AT_NULL ends the vector; it is appended below
    words.push_back(entry.type);
    words.push_back(entry.value);
  }
  words.push_back(0);
  words.push_back(0);
  return words;
}

std::vector<core::FileMapping> fileMappings(const SnapshotMetadata& metadata) {
  const uint64_t page_size = metadata.host.page_size == 0 ? 4096 : metadata.host.page_size;
  std::vector<core::FileMapping> mappings;
  for (const RegionRecord& region : metadata.regions) {
    const MapsEntry& map = region.map();
    // The kernel lists every mapping with a file behind it, memfd and deleted files included
    // (with the " (deleted)" suffix it prints in maps).
    if (map.isAnonymous() || map.path.empty())
      continue;
    mappings.push_back(core::FileMapping{map.start, map.end, map.offset / page_size,
                                         map.deleted ? map.path + " (deleted)" : map.path});
  }
  return mappings;
}

void addRegisterSets(CoreNotes& notes, const ThreadRecord& thread) {
  for (const RegisterSet& set : thread.register_sets) {
    if (set.note_type == core::kNtPrStatus)
      continue; // written as the thread's NT_PRSTATUS
    addNote(notes, core::ownerForNoteType(set.note_type), set.note_type, set.bytes.data(),
            set.bytes.size(), thread.tid);
  }
}

} // namespace

CoreNotes buildCoreNotes(const SnapshotMetadata& metadata) {
  CoreNotes notes;
  const ProcessInfo& process = metadata.process;
  if (metadata.threads.empty())
    notes.warnings.push_back("the snapshot holds no threads; the core has no registers");

  auto addProcessNotes = [&] {
    core::CorePrPsInfo info = makePrPsInfo(process);
    addNote(notes, core::kOwnerCore, core::kNtPrPsInfo, &info, sizeof info, 0);
    if (process.auxv.empty()) {
      notes.warnings.push_back(
          "the snapshot holds no auxiliary vector; gdb cannot relocate a PIE executable");
    } else {
      std::vector<uint64_t> words = auxvWords(process);
      addNote(notes, core::kOwnerCore, core::kNtAuxv, words.data(), words.size() * 8, 0);
    }
    std::vector<std::byte> files = core::encodeFileNote(
        fileMappings(metadata), metadata.host.page_size == 0 ? 4096 : metadata.host.page_size);
    addNote(notes, core::kOwnerCore, core::kNtFile, files.data(), files.size(), 0);
  };

  for (size_t index = 0; index < metadata.threads.size(); ++index) {
    const ThreadRecord& thread = metadata.threads[index];
    core::CorePrStatus status = makePrStatus(thread, process, index == 0, notes.warnings);
    addNote(notes, core::kOwnerCore, core::kNtPrStatus, &status, sizeof status, thread.tid);
    if (index == 0)
      addProcessNotes();
    addRegisterSets(notes, thread);
  }
  if (metadata.threads.empty())
    addProcessNotes();
  return notes;
}

} // namespace procsnap::analyze

// The notes export-core writes, built from synthetic metadata and read back byte by byte: the
// kernel's order, padding, struct elf_prstatus around the raw registers, NT_PRPSINFO fields,
// NT_AUXV's terminator and the NT_FILE table.
#include "analyze/output/core_note_builder.h"
#include "analyze/sources/core_notes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace procsnap::analyze {
namespace {

struct ParsedNote {
  std::string owner;
  uint32_t type = 0;
  std::vector<std::byte> descriptor;
};

// An independent reader of 64-bit core notes (4-byte padding).
std::vector<ParsedNote> parseNotes(const std::vector<std::byte>& bytes) {
  std::vector<ParsedNote> notes;
  size_t at = 0;
  auto pad = [](size_t size) { return (size + 3) / 4 * 4; };
  while (at + 12 <= bytes.size()) {
    uint32_t header[3];
    std::memcpy(header, bytes.data() + at, 12);
    at += 12;
    ParsedNote note;
    note.type = header[2];
    EXPECT_LE(at + pad(header[0]) + pad(header[1]), bytes.size());
    if (at + pad(header[0]) + pad(header[1]) > bytes.size())
      break;
    note.owner.assign(reinterpret_cast<const char*>(bytes.data() + at), header[0]);
    EXPECT_EQ(note.owner.back(), '\0');
    note.owner.pop_back();
    at += pad(header[0]);
    note.descriptor.assign(bytes.begin() + static_cast<ptrdiff_t>(at),
                           bytes.begin() + static_cast<ptrdiff_t>(at + header[1]));
    at += pad(header[1]);
    notes.push_back(std::move(note));
  }
  EXPECT_EQ(at, bytes.size());
  return notes;
}

ThreadRecord makeThread(int32_t tid, uint64_t rip, bool with_fp) {
  ThreadRecord thread;
  thread.tid = tid;
  RegisterSet general;
  general.note_type = core::kNtPrStatus;
  general.bytes.resize(core::kUserRegsSize);
  std::memcpy(general.bytes.data() + core::kUserRegsRipIndex * 8, &rip, 8);
  thread.register_sets.push_back(general);
  if (with_fp) {
    thread.register_sets.push_back({core::kNtPrFpReg, std::vector<std::byte>(512, std::byte{7})});
    thread.register_sets.push_back(
        {core::kNtX86Xstate, std::vector<std::byte>(2432, std::byte{9})});
  }
  return thread;
}

SnapshotMetadata makeMetadata() {
  SnapshotMetadata metadata;
  metadata.host.page_size = 4096;
  metadata.process.pid = 100;
  metadata.process.ppid = 1;
  metadata.process.comm = "a-very-long-command-name";
  metadata.process.cmdline = {"/bin/prog", "--flag", std::string(100, 'x')};
  metadata.process.uid = {1000, 1001, 1002, 1003};
  metadata.process.gid = {2000, 2001, 2002, 2003};
  metadata.process.status = {{"State", "S (sleeping)"},
                             {"NSpgid", "77"},
                             {"NSsid", "66\t1"},
                             {"SigBlk", "0000000000010000"}};
  metadata.process.auxv = {{33, 0x7ffd0000}, {6, 4096}, {0, 0}};
  metadata.threads = {makeThread(100, 0x401000, true), makeThread(101, 0x402000, true)};
  RegionRecord exe;
  exe.smaps.map.start = 0x400000;
  exe.smaps.map.end = 0x402000;
  exe.smaps.map.offset = 0x3000;
  exe.smaps.map.inode = 5;
  exe.smaps.map.path = "/bin/prog";
  RegionRecord anonymous;
  anonymous.smaps.map.start = 0x500000;
  anonymous.smaps.map.end = 0x501000;
  RegionRecord memfd;
  memfd.smaps.map.start = 0x600000;
  memfd.smaps.map.end = 0x610000;
  memfd.smaps.map.inode = 9;
  memfd.smaps.map.path = "/memfd:x";
  memfd.smaps.map.deleted = true;
  metadata.regions = {exe, anonymous, memfd};
  return metadata;
}

template <typename T> T descriptorAs(const ParsedNote& note) {
  T value;
  EXPECT_EQ(note.descriptor.size(), sizeof value);
  std::memcpy(&value, note.descriptor.data(), std::min(sizeof value, note.descriptor.size()));
  return value;
}

TEST(CoreNoteBuilder, KernelOrderAndOwners) {
  CoreNotes notes = buildCoreNotes(makeMetadata());
  EXPECT_TRUE(notes.warnings.empty());
  std::vector<ParsedNote> parsed = parseNotes(notes.bytes);
  std::vector<std::pair<std::string, uint32_t>> order;
  for (const ParsedNote& note : parsed)
    order.emplace_back(note.owner, note.type);
  std::vector<std::pair<std::string, uint32_t>> expected = {
      {"CORE", core::kNtPrStatus}, {"CORE", core::kNtPrPsInfo}, {"CORE", core::kNtAuxv},
      {"CORE", core::kNtFile},     {"CORE", core::kNtPrFpReg},  {"LINUX", core::kNtX86Xstate},
      {"CORE", core::kNtPrStatus}, {"CORE", core::kNtPrFpReg},  {"LINUX", core::kNtX86Xstate}};
  EXPECT_EQ(order, expected);
  ASSERT_EQ(notes.entries.size(), expected.size());
  EXPECT_EQ(notes.entries[0].tid, 100);
  EXPECT_EQ(notes.entries[1].tid, 0);
  EXPECT_EQ(notes.entries[6].tid, 101);
  EXPECT_EQ(notes.entries[5].descriptor_size, 2432u);
}

TEST(CoreNoteBuilder, PrStatusWrapsTheRegisters) {
  std::vector<ParsedNote> parsed = parseNotes(buildCoreNotes(makeMetadata()).bytes);
  auto main_status = descriptorAs<core::CorePrStatus>(parsed[0]);
  EXPECT_EQ(main_status.pr_pid, 100);
  EXPECT_EQ(main_status.pr_ppid, 1);
  EXPECT_EQ(main_status.pr_pgrp, 77);
  EXPECT_EQ(main_status.pr_sid, 66);
  EXPECT_EQ(main_status.pr_sighold, 0x10000u);
  EXPECT_EQ(main_status.pr_reg[core::kUserRegsRipIndex], 0x401000u);
  EXPECT_EQ(main_status.pr_fpvalid, 1);
  auto worker_status = descriptorAs<core::CorePrStatus>(parsed[6]);
  EXPECT_EQ(worker_status.pr_pid, 101);
  EXPECT_EQ(worker_status.pr_reg[core::kUserRegsRipIndex], 0x402000u);
  EXPECT_EQ(worker_status.pr_sighold, 0u);
}

TEST(CoreNoteBuilder, PrPsInfoAuxvAndFile) {
  std::vector<ParsedNote> parsed = parseNotes(buildCoreNotes(makeMetadata()).bytes);
  auto info = descriptorAs<core::CorePrPsInfo>(parsed[1]);
  EXPECT_EQ(info.pr_sname, 'S');
  EXPECT_EQ(info.pr_state, 1);
  EXPECT_EQ(info.pr_uid, 1000u);
  EXPECT_EQ(info.pr_gid, 2000u);
  EXPECT_EQ(info.pr_pid, 100);
  EXPECT_EQ(std::string(info.pr_fname), "a-very-long-com"); // 15 characters and the NUL
  std::string psargs(info.pr_psargs);
  EXPECT_EQ(psargs.size(), core::kPrPsArgsSize - 1);
  EXPECT_EQ(psargs.rfind("/bin/prog --flag xxx", 0), 0u);

  // AT_PHDR... pairs, then exactly one AT_NULL pair.
  std::vector<uint64_t> auxv(parsed[2].descriptor.size() / 8);
  std::memcpy(auxv.data(), parsed[2].descriptor.data(), parsed[2].descriptor.size());
  EXPECT_EQ(auxv, (std::vector<uint64_t>{33, 0x7ffd0000, 6, 4096, 0, 0}));

  const std::vector<std::byte>& file = parsed[3].descriptor;
  std::vector<uint64_t> words(8);
  ASSERT_GE(file.size(), words.size() * 8);
  std::memcpy(words.data(), file.data(), words.size() * 8);
  EXPECT_EQ(words, (std::vector<uint64_t>{2, 4096, 0x400000, 0x402000, 3, 0x600000, 0x610000, 0}));
  std::string names(reinterpret_cast<const char*>(file.data()) + 64, file.size() - 64);
  EXPECT_EQ(names, std::string("/bin/prog\0/memfd:x (deleted)\0", 29));
}

TEST(CoreNoteBuilder, MissingPiecesAreWarnings) {
  SnapshotMetadata metadata = makeMetadata();
  metadata.process.auxv.clear();
  metadata.threads[1].register_sets.clear();
  CoreNotes notes = buildCoreNotes(metadata);
  ASSERT_EQ(notes.warnings.size(), 2u);
  // In note order: the process notes follow the main thread's NT_PRSTATUS.
  EXPECT_NE(notes.warnings[0].find("auxiliary vector"), std::string::npos) << notes.warnings[0];
  EXPECT_NE(notes.warnings[1].find("thread 101"), std::string::npos) << notes.warnings[1];
  std::vector<ParsedNote> parsed = parseNotes(notes.bytes);
  for (const ParsedNote& note : parsed)
    EXPECT_NE(note.type, core::kNtAuxv);
  auto worker_status = descriptorAs<core::CorePrStatus>(parsed.back());
  EXPECT_EQ(worker_status.pr_pid, 101);
  EXPECT_EQ(worker_status.pr_fpvalid, 0);
}

} // namespace
} // namespace procsnap::analyze

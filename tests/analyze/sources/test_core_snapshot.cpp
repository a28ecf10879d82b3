// CoreSnapshot on small ELF cores built here byte by byte (a kernel-like layout: text left
// out, data stored, NT_FILE/NT_PRSTATUS/NT_PRPSINFO/NT_AUXV notes), damaged variants of them,
// and compressed copies made with the zstd, xz, gzip and lz4 command-line tools.
#include "analyze/model/elf_module.h"
#include "analyze/sources/compressed_source.h"
#include "analyze/sources/core_snapshot.h"

#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace procsnap::analyze {
namespace {

constexpr uint32_t kPtLoad = 1, kPtNote = 4;
constexpr uint32_t kPfX = 1, kPfW = 2, kPfR = 4;
constexpr int kToolTimeoutSeconds = 30;

void put(std::vector<uint8_t>& out, const void* data, size_t size) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + size);
}
template <typename T> void putValue(std::vector<uint8_t>& out, T value) {
  put(out, &value, sizeof value);
}
void align(std::vector<uint8_t>& out, size_t alignment) {
  while (out.size() % alignment)
    out.push_back(0);
}

struct NoteSpec {
  std::string owner;
  uint32_t type = 0;
  std::vector<uint8_t> desc;
};

struct LoadSpec {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint32_t flags = 0;
  std::vector<uint8_t> bytes; // p_filesz = bytes.size()
};

struct FileSpec {
  uint64_t start = 0, end = 0, offset = 0;
  std::string path;
};

// Builds an x86-64 ELF core: header, program headers, one PT_NOTE, page-aligned PT_LOAD data.
struct CoreBuilder {
  uint16_t type = 4; // ET_CORE
  std::vector<NoteSpec> notes;
  std::vector<LoadSpec> loads;

  void note(const std::string& owner, uint32_t note_type, std::vector<uint8_t> desc) {
    notes.push_back({owner, note_type, std::move(desc)});
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> note_bytes;
    for (const NoteSpec& n : notes) {
      putValue<uint32_t>(note_bytes, static_cast<uint32_t>(n.owner.size() + 1));
      putValue<uint32_t>(note_bytes, static_cast<uint32_t>(n.desc.size()));
      putValue<uint32_t>(note_bytes, n.type);
      put(note_bytes, n.owner.c_str(), n.owner.size() + 1);
      align(note_bytes, 4);
      put(note_bytes, n.desc.data(), n.desc.size());
      align(note_bytes, 4);
    }
    const uint16_t phnum = static_cast<uint16_t>(1 + loads.size());
    const uint64_t notes_offset = 64 + 56 * phnum;
    uint64_t data_offset = (notes_offset + note_bytes.size() + 4095) / 4096 * 4096;

    std::vector<uint8_t> out;
    const uint8_t ident[16] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
    put(out, ident, sizeof ident);
    putValue<uint16_t>(out, type);
    putValue<uint16_t>(out, 62); // EM_X86_64
    putValue<uint32_t>(out, 1);
    putValue<uint64_t>(out, 0);  // e_entry
    putValue<uint64_t>(out, 64); // e_phoff
    putValue<uint64_t>(out, 0);  // e_shoff
    putValue<uint32_t>(out, 0);
    putValue<uint16_t>(out, 64);
    putValue<uint16_t>(out, 56);
    putValue<uint16_t>(out, phnum);
    putValue<uint16_t>(out, 64);
    putValue<uint16_t>(out, 0);
    putValue<uint16_t>(out, 0);
    auto phdr = [&](uint32_t p_type, uint32_t flags, uint64_t offset, uint64_t vaddr,
                    uint64_t filesz, uint64_t memsz) {
      putValue<uint32_t>(out, p_type);
      putValue<uint32_t>(out, flags);
      putValue<uint64_t>(out, offset);
      putValue<uint64_t>(out, vaddr);
      putValue<uint64_t>(out, 0);
      putValue<uint64_t>(out, filesz);
      putValue<uint64_t>(out, memsz);
      putValue<uint64_t>(out, p_type == kPtLoad ? 4096 : 4);
    };
    phdr(kPtNote, 0, notes_offset, 0, note_bytes.size(), 0);
    std::vector<uint64_t> offsets;
    for (const LoadSpec& load : loads) {
      offsets.push_back(data_offset);
      phdr(kPtLoad, load.flags, data_offset, load.vaddr, load.bytes.size(), load.memsz);
      data_offset += (load.bytes.size() + 4095) / 4096 * 4096;
    }
    put(out, note_bytes.data(), note_bytes.size());
    for (size_t i = 0; i < loads.size(); ++i) {
      out.resize(offsets[i], 0);
      put(out, loads[i].bytes.data(), loads[i].bytes.size());
    }
    return out;
  }
};

std::vector<uint8_t> prstatus(int32_t tid, uint64_t pc, uint64_t sp) {
  std::vector<uint8_t> desc(336, 0);
  std::memcpy(desc.data() + 32, &tid, 4);
  std::memcpy(desc.data() + 112 + 16 * 8, &pc, 8);
  std::memcpy(desc.data() + 112 + 19 * 8, &sp, 8);
  return desc;
}

std::vector<uint8_t> prpsinfo(int32_t pid, int32_t ppid, const std::string& comm,
                              const std::string& args) {
  std::vector<uint8_t> desc(136, 0);
  desc[1] = 'S';
  uint32_t uid = 1000;
  std::memcpy(desc.data() + 16, &uid, 4);
  std::memcpy(desc.data() + 24, &pid, 4);
  std::memcpy(desc.data() + 28, &ppid, 4);
  std::memcpy(desc.data() + 40, comm.data(), std::min<size_t>(comm.size(), 16));
  std::memcpy(desc.data() + 56, args.data(), std::min<size_t>(args.size(), 80));
  return desc;
}

std::vector<uint8_t> auxv(std::vector<std::pair<uint64_t, uint64_t>> entries) {
  std::vector<uint8_t> desc;
  entries.push_back({0, 0});
  for (auto [type, value] : entries) {
    putValue(desc, type);
    putValue(desc, value);
  }
  return desc;
}

std::vector<uint8_t> fileNote(const std::vector<FileSpec>& files, uint64_t page_size = 4096) {
  std::vector<uint8_t> desc;
  putValue<uint64_t>(desc, files.size());
  putValue<uint64_t>(desc, page_size);
  for (const FileSpec& f : files) {
    putValue(desc, f.start);
    putValue(desc, f.end);
    putValue<uint64_t>(desc, f.offset / page_size);
  }
  for (const FileSpec& f : files)
    put(desc, f.path.c_str(), f.path.size() + 1);
  return desc;
}

std::vector<uint8_t> textBytes(size_t size, const std::string& marker) {
  std::vector<uint8_t> bytes(size, 0);
  std::memcpy(bytes.data() + 16, marker.data(), marker.size());
  return bytes;
}

// The kernel-like core used by most tests: an executable (text left out, data stored), heap,
// stack, vdso and two threads whose non-main one is written first.
CoreBuilder sampleCore() {
  CoreBuilder core;
  core.note("CORE", 3, prpsinfo(100, 1, "prog", "prog --flag value"));
  core.note("CORE", 1, prstatus(101, 0x400200, 0x600800));
  core.note("CORE", 2, std::vector<uint8_t>(512, 0xf2));
  core.note("LINUX", 0x202, std::vector<uint8_t>(2432, 0x3c));
  core.note("CORE", 1, prstatus(100, 0x400100, 0x7ffd0800));
  core.note("CORE", 6, auxv({{6, 4096}, {9, 0x400010}, {25, 0x7ffd0f00}, {33, 0x7fff0000}}));
  core.note("CORE", 0x46494c45,
            fileNote({{0x400000, 0x401000, 0, "/opt/fake/prog"},
                      {0x401000, 0x402000, 0x1000, "/opt/fake/prog"}}));
  core.loads.push_back({0x400000, 0x1000, kPfR | kPfX, {}});
  core.loads.push_back({0x401000, 0x1000, kPfR | kPfW, textBytes(0x1000, "core-data-marker")});
  core.loads.push_back({0x500000, 0x2000, kPfR | kPfW, textBytes(0x2000, "core-heap-marker")});
  core.loads.push_back({0x600000, 0x1000, kPfR | kPfW, textBytes(0x1000, "worker-stack")});
  core.loads.push_back({0x7ffd0000, 0x1000, kPfR | kPfW, textBytes(0x1000, "main-stack")});
  core.loads.push_back({0x7fff0000, 0x1000, kPfR | kPfX, textBytes(0x1000, "vdso")});
  return core;
}

llvm::Expected<std::unique_ptr<CoreSnapshot>> parse(const std::vector<uint8_t>& bytes,
                                                    OpenOptions options = {}) {
  options.use_original_paths = false; // tests must not depend on the host's files
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(
      llvm::StringRef(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "test.core");
  return CoreSnapshot::create("test.core", std::move(buffer), Compression::None, options);
}

std::string errorOf(llvm::Expected<std::unique_ptr<CoreSnapshot>> result) {
  if (result)
    return "";
  return llvm::toString(result.takeError());
}

bool anyWarningContains(const SnapshotMetadata& metadata, const std::string& text) {
  for (const std::string& warning : metadata.warnings)
    if (warning.find(text) != std::string::npos)
      return true;
  return false;
}

void writeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(CoreSnapshotTest, RegionsComeFromLoadsAndFileNotes) {
  auto snapshot = parse(sampleCore().build());
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  const SnapshotMetadata& m = (*snapshot)->metadata();
  EXPECT_EQ((*snapshot)->sourceKind(), "core");
  ASSERT_EQ(m.regions.size(), 6u);
  EXPECT_EQ(m.regions[0].map().path, "/opt/fake/prog");
  EXPECT_EQ(m.regions[0].map().perms.str(), "r-xp");
  EXPECT_EQ(m.regions[0].kind, RegionKind::Text);
  EXPECT_EQ(m.regions[1].map().offset, 0x1000u);
  EXPECT_EQ(m.regions[1].map().perms.str(), "rw-p");
  EXPECT_EQ(m.regions[1].kind, RegionKind::Data);
  EXPECT_EQ(m.regions[2].map().path, "[heap]");
  EXPECT_EQ(m.regions[2].kind, RegionKind::Heap);
  EXPECT_EQ(m.regions[3].kind, RegionKind::ThreadStack);
  EXPECT_EQ(m.regions[4].map().path, "[stack]");
  EXPECT_EQ(m.regions[5].map().path, "[vdso]");
  // Text the core leaves out, with no file to read it from.
  ASSERT_EQ(m.regions[0].pages.size(), 1u);
  EXPECT_EQ(m.regions[0].pages[0].state, PageState::ExcludedFilter);
  EXPECT_EQ(m.regions[1].pages[0].state, PageState::Stored);
  EXPECT_EQ(m.stats.bytes_stored, 0x1000u + 0x2000 + 0x1000 + 0x1000 + 0x1000);
  EXPECT_EQ(m.stats.bytes_skipped.at("excluded-filter"), 0x1000u);
  EXPECT_EQ(m.host.page_size, 4096u);
  EXPECT_TRUE(anyWarningContains(m, "no build-id")) << m.warnings.size();
}

TEST(CoreSnapshotTest, ThreadsProcessAndModulesComeFromNotes) {
  auto snapshot = parse(sampleCore().build());
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  const SnapshotMetadata& m = (*snapshot)->metadata();
  EXPECT_EQ(m.process.pid, 100);
  EXPECT_EQ(m.process.ppid, 1);
  EXPECT_EQ(m.process.comm, "prog");
  EXPECT_EQ(m.process.exe, "/opt/fake/prog");
  EXPECT_EQ(m.process.cmdline, (std::vector<std::string>{"prog", "--flag", "value"}));
  EXPECT_EQ(m.process.uid[0], 1000u);
  ASSERT_EQ(m.process.auxv.size(), 4u);
  ASSERT_EQ(m.threads.size(), 2u);
  EXPECT_EQ(m.threads[0].tid, 100); // main first, though written second
  EXPECT_EQ(m.threads[0].name, "prog");
  EXPECT_EQ(m.threads[0].pc, 0x400100u);
  EXPECT_EQ(m.threads[0].sp, 0x7ffd0800u);
  ASSERT_EQ(m.threads[0].register_sets.size(), 1u);
  EXPECT_EQ(m.threads[0].register_sets[0].note_type, 1u);
  EXPECT_EQ(m.threads[0].register_sets[0].bytes.size(), 27u * 8); // pr_reg, raw
  EXPECT_EQ(m.threads[1].tid, 101);
  ASSERT_EQ(m.threads[1].register_sets.size(), 3u);
  EXPECT_EQ(m.threads[1].register_sets[1].note_type, 2u);
  EXPECT_EQ(m.threads[1].register_sets[1].bytes.size(), 512u);
  EXPECT_EQ(m.threads[1].register_sets[2].note_type, 0x202u);
  EXPECT_EQ(m.threads[1].register_sets[2].bytes[0], std::byte{0x3c});
  ASSERT_EQ(m.modules.size(), 1u);
  EXPECT_EQ(m.modules[0].path, "/opt/fake/prog");
  EXPECT_EQ(m.modules[0].load_address, 0x400000u);
}

TEST(CoreSnapshotTest, ReadSaysWhatWasWhere) {
  auto snapshot = parse(sampleCore().build());
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  std::vector<uint8_t> out(0x3000, 0xff);
  auto read = (*snapshot)->read(0x400000, out);
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  ASSERT_EQ(read->runs.size(), 3u);
  EXPECT_EQ(read->runs[0].state, PageState::ExcludedFilter);
  EXPECT_EQ(read->runs[1].state, PageState::Stored);
  EXPECT_FALSE(read->runs[2].mapped);
  EXPECT_EQ(read->bytes_stored, 0x1000u);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out.data()) + 0x1010), "core-data-marker");
  auto extents = (*snapshot)->storedExtents(0, UINT64_MAX);
  ASSERT_FALSE(extents.empty());
  EXPECT_EQ(extents[0].start, 0x401000u);
}

// A module whose text the core leaves out gets it from its file when the build-id in the
// core's memory matches; here the module is the sample target's executable.
class CoreFromFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    exe_ = PROCSNAP_SAMPLE_PIE; // small: the test binary itself takes seconds to summarize
    exe_bytes_ = readFile(exe_);
    ASSERT_GT(exe_bytes_.size(), 0x4000u);
    auto summary = summarizeElfFile(exe_);
    ASSERT_TRUE(static_cast<bool>(summary)) << llvm::toString(summary.takeError());
    build_id_ = summary->build_id;
    ASSERT_FALSE(build_id_.empty()) << exe_ << " has no build-id";
  }

  CoreBuilder coreOfExe(bool damage_build_id) {
    CoreBuilder core;
    core.note("CORE", 3, prpsinfo(7, 1, "analyze_tests", "analyze_tests"));
    core.note("CORE", 1, prstatus(7, 0x10001000, 0x20000800));
    core.note(
        "CORE", 0x46494c45,
        fileNote({{0x10000000, 0x10001000, 0, exe_}, {0x10001000, 0x10003000, 0x1000, exe_}}));
    std::vector<uint8_t> header(exe_bytes_.begin(), exe_bytes_.begin() + 0x1000);
    if (damage_build_id) {
      std::string needle;
      for (size_t i = 0; i + 1 < build_id_.size(); i += 2)
        needle.push_back(static_cast<char>(std::stoi(build_id_.substr(i, 2), nullptr, 16)));
      std::string page(header.begin(), header.end());
      size_t at = page.find(needle);
      EXPECT_NE(at, std::string::npos);
      if (at != std::string::npos)
        header[at] ^= 0xff;
    }
    core.loads.push_back({0x10000000, 0x1000, kPfR, header});
    core.loads.push_back({0x10001000, 0x2000, kPfR | kPfX, {}});
    core.loads.push_back({0x20000000, 0x1000, kPfR | kPfW, textBytes(0x1000, "stack")});
    return core;
  }

  std::string exe_;
  std::vector<uint8_t> exe_bytes_;
  std::string build_id_;
};

TEST_F(CoreFromFileTest, MissingPagesComeFromTheModuleFile) {
  OpenOptions options;
  options.sysroot = "/"; // parse() turns off original paths: find it through the sysroot
  auto snapshot = parse(coreOfExe(false).build(), options);
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  const SnapshotMetadata& m = (*snapshot)->metadata();
  ASSERT_EQ(m.modules.size(), 1u);
  EXPECT_EQ(m.modules[0].build_id, build_id_);
  EXPECT_EQ(m.modules[0].build_id_memory, build_id_);
  ASSERT_EQ(m.regions.size(), 3u);
  ASSERT_EQ(m.regions[1].pages.size(), 1u);
  EXPECT_EQ(m.regions[1].pages[0].state, PageState::FromFile);
  EXPECT_NE((*snapshot)->contentsFile(1), "");
  std::vector<uint8_t> out(0x2000);
  auto read = (*snapshot)->read(0x10001000, out);
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  ASSERT_EQ(read->runs.size(), 1u);
  EXPECT_EQ(read->runs[0].state, PageState::FromFile);
  EXPECT_EQ(read->bytes_stored, 0u); // not from the core
  EXPECT_TRUE(std::equal(out.begin(), out.end(), exe_bytes_.begin() + 0x1000));
  auto extents = (*snapshot)->storedExtents(0x10000000, 0x10003000);
  ASSERT_EQ(extents.size(), 1u);
  EXPECT_EQ(extents[0].end, 0x10003000u);
}

TEST_F(CoreFromFileTest, AFileWithAnotherBuildIdIsNotUsed) {
  OpenOptions options;
  options.sysroot = "/";
  auto snapshot = parse(coreOfExe(true).build(), options);
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  const SnapshotMetadata& m = (*snapshot)->metadata();
  ASSERT_EQ(m.regions.size(), 3u);
  EXPECT_EQ(m.regions[1].pages[0].state, PageState::ExcludedFilter);
  EXPECT_TRUE(anyWarningContains(m, "no file with that build-id")) << m.warnings.front();
}

TEST_F(CoreFromFileTest, WithoutTheFileThePagesStayExcluded) {
  auto snapshot = parse(coreOfExe(false).build());
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  EXPECT_EQ((*snapshot)->metadata().regions[1].pages[0].state, PageState::ExcludedFilter);
  EXPECT_EQ((*snapshot)->contentsFile(1), "");
}

TEST(CoreSnapshotHostileTest, LoadPastTheEndIsKeptUpToTheEnd) {
  std::vector<uint8_t> bytes = sampleCore().build();
  bytes.resize(bytes.size() - 0x1800); // cuts into the last two PT_LOADs
  auto snapshot = parse(bytes);
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  const SnapshotMetadata& m = (*snapshot)->metadata();
  EXPECT_TRUE(m.partial);
  EXPECT_TRUE(anyWarningContains(m, "missing"));
  const RegionRecord& last = m.regions.back();
  ASSERT_FALSE(last.pages.empty());
  EXPECT_EQ(last.pages.back().state, PageState::Lost);
  std::vector<uint8_t> out(0x1000);
  auto read = (*snapshot)->read(0x7fff0000, out);
  ASSERT_TRUE(static_cast<bool>(read));
  EXPECT_EQ(read->runs.back().state, PageState::Lost);
}

TEST(CoreSnapshotHostileTest, BadHeadersAreClearErrors) {
  std::vector<uint8_t> good = sampleCore().build();
  EXPECT_NE(
      errorOf(parse(std::vector<uint8_t>(good.begin(), good.begin() + 40))).find("not an ELF core"),
      std::string::npos);
  CoreBuilder exec = sampleCore();
  exec.type = 2;
  EXPECT_NE(errorOf(parse(exec.build())).find("not a core"), std::string::npos);
  std::vector<uint8_t> many = good;
  uint16_t phnum = 60000;
  std::memcpy(many.data() + 56, &phnum, 2);
  std::string error = errorOf(parse(many));
  EXPECT_NE(error.find("program header table"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(CoreSnapshotHostileTest, AbsurdNotesAreSkippedWithWarnings) {
  CoreBuilder core = sampleCore();
  std::vector<uint8_t> file(40, 0);
  uint64_t count = uint64_t{1} << 60;
  std::memcpy(file.data(), &count, 8);
  core.notes.push_back({"CORE", 0x46494c45, file});
  core.notes.push_back({"CORE", 1, std::vector<uint8_t>(20, 1)}); // short NT_PRSTATUS
  auto snapshot = parse(core.build());
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  EXPECT_TRUE(anyWarningContains((*snapshot)->metadata(), "claims"));
  EXPECT_TRUE(anyWarningContains((*snapshot)->metadata(), "too short"));
}

// Random damage anywhere in the headers and notes: an error or a snapshot, never a crash
// (the ASan build checks the reads).
TEST(CoreSnapshotHostileTest, RandomDamageNeverCrashes) {
  std::vector<uint8_t> good = sampleCore().build();
  std::mt19937 random(12345);
  size_t opened = 0, refused = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<uint8_t> bytes = good;
    for (int flips = 0; flips < 4; ++flips)
      bytes[random() % 4096] = static_cast<uint8_t>(random());
    auto snapshot = parse(bytes);
    if (!snapshot) {
      // A refusal is one non-empty line.
      const std::string message = llvm::toString(snapshot.takeError());
      EXPECT_FALSE(message.empty()) << "round " << round;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "round " << round << ": " << message;
      ++refused;
      continue;
    }
    ++opened;
    std::vector<uint8_t> out(0x4000);
    for (const RegionRecord& region : (*snapshot)->metadata().regions) {
      auto read = (*snapshot)->read(region.map().start, out);
      if (!read) {
        const std::string message = llvm::toString(read.takeError());
        EXPECT_FALSE(message.empty()) << "round " << round;
        continue;
      }
      // What a read claims to hold fits in what was asked, and its runs stay in the request.
      EXPECT_LE(read->bytes_stored, out.size()) << "round " << round;
      for (const auto& run : read->runs) {
        EXPECT_GE(run.start, region.map().start) << "round " << round;
        EXPECT_LE(run.end, region.map().start + out.size()) << "round " << round;
      }
    }
  }
  // Four flipped bytes in 4 KiB of headers and notes both break and spare the core: a run
  // where only one outcome occurs means the damage did not reach what it is meant to.
  EXPECT_GT(opened, 0u);
  EXPECT_GT(refused, 0u);
}

class CompressedCoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = test::TempDir::create("procsnap-core-test");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_ = std::make_unique<test::TempDir>(std::move(*dir));
    // Random bytes so that compressed streams are long enough to cut inside a frame.
    CoreBuilder core = sampleCore();
    std::mt19937 random(7);
    std::vector<uint8_t> noise(256 * 1024);
    for (auto& byte : noise)
      byte = static_cast<uint8_t>(random());
    core.loads.push_back({0x800000, noise.size(), kPfR | kPfW, noise});
    plain_ = dir_->file("core");
    writeFile(plain_, core.build());
  }

  // Compresses the plain core with a command-line tool into core.EXT.
  std::string compress(const std::string& tool, const std::string& extension) {
    std::string out = plain_ + "." + extension;
    auto result = test::runCommand({"sh", "-c", tool + " < '" + plain_ + "' > '" + out + "'"},
                                   kToolTimeoutSeconds);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return out;
  }

  std::string truncated(const std::string& path) {
    std::vector<uint8_t> bytes = readFile(path);
    bytes.resize(bytes.size() / 2);
    std::string out = path + ".cut";
    writeFile(out, bytes);
    return out;
  }

  std::unique_ptr<test::TempDir> dir_;
  std::string plain_;
};

TEST_F(CompressedCoreTest, EveryCompressionOpensTheSame) {
  OpenOptions options;
  options.use_original_paths = false;
  auto plain = CoreSnapshot::open(plain_, options);
  ASSERT_TRUE(static_cast<bool>(plain)) << llvm::toString(plain.takeError());
  std::vector<uint8_t> expected(256 * 1024);
  ASSERT_TRUE(static_cast<bool>((*plain)->read(0x800000, expected)));
  const std::vector<std::pair<std::string, Compression>> variants = {
      {compress("zstd -q -c", "zst"), Compression::Zstd},
      {compress("xz -0 -c", "xz"), Compression::Xz},
      {compress("gzip -1 -c", "gz"), Compression::Gzip},
      {compress("lz4 -q -c", "lz4"), Compression::Lz4}};
  for (const auto& [path, compression] : variants) {
    SCOPED_TRACE(path);
    auto snapshot = openSnapshot(path, options);
    ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
    auto* core = dynamic_cast<CoreSnapshot*>(snapshot->get());
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(core->compression(), compression);
    EXPECT_EQ(core->metadata().regions.size(), (*plain)->metadata().regions.size());
    std::vector<uint8_t> got(expected.size());
    auto read = core->read(0x800000, got);
    ASSERT_TRUE(static_cast<bool>(read));
    EXPECT_EQ(got, expected);
  }
}

TEST_F(CompressedCoreTest, TruncatedStreamsSaySo) {
  for (const auto& [tool, extension] : std::vector<std::pair<std::string, std::string>>{
           {"zstd -q -c", "zst"}, {"lz4 -q -c", "lz4"}}) {
    std::string path = truncated(compress(tool, extension));
    auto snapshot = openSnapshot(path, {});
    ASSERT_FALSE(static_cast<bool>(snapshot)) << path;
    std::string error = llvm::toString(snapshot.takeError());
    EXPECT_NE(error.find("is truncated: the compressed stream ends inside a frame"),
              std::string::npos)
        << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
  for (const auto& [tool, extension] :
       std::vector<std::pair<std::string, std::string>>{{"xz -0 -c", "xz"}, {"gzip -c", "gz"}}) {
    std::string path = truncated(compress(tool, extension));
    auto snapshot = openSnapshot(path, {});
    ASSERT_FALSE(static_cast<bool>(snapshot)) << path;
    std::string error = llvm::toString(snapshot.takeError());
    EXPECT_NE(error.find("is truncated or damaged"), std::string::npos) << error;
  }
}

TEST_F(CompressedCoreTest, DecompressedSizeIsBounded) {
  std::string path = compress("zstd -q -c", "zst");
  auto opened = openPossiblyCompressed(path, 100 * 1024);
  ASSERT_FALSE(static_cast<bool>(opened));
  EXPECT_NE(llvm::toString(opened.takeError()).find("decompresses to more than"),
            std::string::npos);
}

TEST(CompressionDetectTest, MagicBytes) {
  auto detect = [](std::vector<uint8_t> bytes) { return detectCompression(bytes); };
  EXPECT_EQ(detect({0x28, 0xb5, 0x2f, 0xfd, 0}), Compression::Zstd);
  EXPECT_EQ(detect({0x5e, 0x2a, 0x4d, 0x18}), Compression::Zstd); // skippable frame
  EXPECT_EQ(detect({0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}), Compression::Xz);
  EXPECT_EQ(detect({0x1f, 0x8b, 8}), Compression::Gzip);
  EXPECT_EQ(detect({0x04, 0x22, 0x4d, 0x18}), Compression::Lz4);
  EXPECT_EQ(detect({0x7f, 'E', 'L', 'F'}), Compression::None);
  EXPECT_EQ(detect({}), Compression::None);
}

} // namespace
} // namespace procsnap::analyze

// export-core end to end: capture the running sample, export the archive as an ELF core, load
// the core in gdb with the sample's executable and check that gdb shows what the live process
// held (the sample's line of truth and /proc/PID/maps), for a PIE and a non-PIE sample. Also
// the core's structure (readelf), its sparseness, and the output-safety rules.
#include "common/proc/files.h"
#include "tests/e2e/analyze_commands_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <tuple>
#include <vector>

namespace procsnap::test {
namespace {

constexpr uint32_t kBssPattern = 0x5a5a5a5a; // the sample's g_bss_array[i] = i ^ kBssPattern
constexpr uint32_t kBssElements = 1u << 20;

// gdb's output split at the markers the commands below echo ("@@name@@").
std::map<std::string, std::string> splitSections(const std::string& out) {
  std::map<std::string, std::string> sections;
  std::string current;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > 4 && line.rfind("@@", 0) == 0 && line.substr(line.size() - 2) == "@@") {
      current = line.substr(2, line.size() - 4);
      continue;
    }
    if (!current.empty())
      sections[current] += line + "\n";
  }
  return sections;
}

// One sample captured and exported once per suite, gdb and readelf run once on the core.
struct ExportedSample {
  std::unique_ptr<CapturedSample> captured;
  std::string core;
  CommandResult export_result;
  nlohmann::json summary;
  std::map<std::string, std::string> gdb;
  std::string gdb_err;
  std::string notes;    // readelf -n
  std::string segments; // readelf -lW

  static std::unique_ptr<ExportedSample> create(SampleVariant variant) {
    auto exported = std::make_unique<ExportedSample>();
    exported->captured = CapturedSample::create(variant);
    if (!exported->captured)
      return nullptr;
    const CapturedSample& sample = *exported->captured;
    exported->core = sample.file("sample.core");
    exported->export_result =
        runAnalyze({"export-core", sample.archive(), "-o", exported->core, "--json"});
    if (exported->export_result.exit_code != 0) {
      ADD_FAILURE() << "export-core failed: " << exported->export_result.err;
      return nullptr;
    }
    exported->summary = parseJson(exported->export_result.out);

    const nlohmann::json& truth = sample.truth();
    std::vector<std::pair<std::string, std::string>> commands = {
        {"data_counter", "print g_data_counter"},
        {"data_message", "print g_data_message"},
        {"bss_first", "print g_bss_array[12345]"},
        {"bss_last", "print g_bss_array[" + std::to_string(kBssElements - 1) + "]"},
        {"heap_small", "print (const char*)" + truth["heap_small"]["addr"].get<std::string>()},
        {"heap_large", "print (const char*)" + truth["heap_large"]["addr"].get<std::string>()},
        {"threads", "thread apply all bt"},
        {"mappings", "info proc mappings"},
    };
    std::vector<std::string> argv = {"gdb",
                                     "-batch",
                                     "-nx",
                                     "-ex",
                                     "set debuginfod enabled off",
                                     "-ex",
                                     "set width 0",
                                     "-ex",
                                     "set print thread-events off",
                                     truth["exe"].get<std::string>(),
                                     exported->core};
    for (const auto& [name, command] : commands) {
      argv.push_back("-ex");
      argv.push_back("echo @@" + name + "@@\\n");
      argv.push_back("-ex");
      argv.push_back(command);
    }
    CommandResult gdb = runCommand(argv, kGdbTimeoutSeconds);
    if (gdb.exit_code != 0) {
      ADD_FAILURE() << "gdb failed (" << gdb.exit_code << "): " << gdb.err;
      return nullptr;
    }
    exported->gdb = splitSections(gdb.out);
    exported->gdb_err = gdb.err;

    CommandResult notes = runCommand({"readelf", "-nW", exported->core}, kAnalyzeTimeoutSeconds);
    CommandResult segments = runCommand({"readelf", "-lW", exported->core}, kAnalyzeTimeoutSeconds);
    EXPECT_EQ(notes.exit_code, 0) << notes.err;
    EXPECT_EQ(segments.exit_code, 0) << segments.err;
    exported->notes = notes.out;
    exported->segments = segments.out;
    return exported;
  }
};

// The value gdb printed for "$N = VALUE" in a section.
std::string printedValue(const std::string& section) {
  size_t equals = section.find(" = ");
  if (section.rfind("$", 0) != 0 || equals == std::string::npos)
    return "<not printed: " + section + ">";
  std::string value = section.substr(equals + 3);
  while (!value.empty() && value.back() == '\n')
    value.pop_back();
  return value;
}

struct LoadSegment {
  uint64_t offset = 0, vaddr = 0, filesz = 0, memsz = 0;
  std::string flags;
};

std::vector<LoadSegment> loadSegments(const std::string& readelf) {
  std::vector<LoadSegment> segments;
  std::istringstream lines(readelf);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string type, offset, vaddr, paddr, filesz, memsz;
    if (!(fields >> type >> offset >> vaddr >> paddr >> filesz >> memsz) || type != "LOAD")
      continue;
    LoadSegment segment{std::stoull(offset, nullptr, 16), std::stoull(vaddr, nullptr, 16),
                        std::stoull(filesz, nullptr, 16), std::stoull(memsz, nullptr, 16), ""};
    std::string flag;
    while (fields >> flag && flag.rfind("0x", 0) != 0)
      segment.flags += flag;
    segments.push_back(segment);
  }
  return segments;
}

// (start, end, path) of every file-backed line of /proc/PID/maps, as gdb names them.
std::set<std::tuple<uint64_t, uint64_t, std::string>> liveFileMappings(pid_t pid) {
  std::set<std::tuple<uint64_t, uint64_t, std::string>> mappings;
  Result<std::string> text = readProcFile("/proc/" + std::to_string(pid) + "/maps");
  EXPECT_TRUE(text.ok()) << text.error().message;
  std::istringstream maps(text.ok() ? *text : std::string());
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0, inode = 0;
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %*s %*s %*s %llu%n", &start, &end, &inode, &consumed) <
            3 ||
        inode == 0)
      continue;
    std::string path = line.substr(static_cast<size_t>(consumed));
    path.erase(0, path.find_first_not_of(' '));
    mappings.emplace(start, end, path);
  }
  return mappings;
}

// (start, end, path) of gdb's `info proc mappings` on the core.
std::set<std::tuple<uint64_t, uint64_t, std::string>> gdbMappings(const std::string& section) {
  std::set<std::tuple<uint64_t, uint64_t, std::string>> mappings;
  std::istringstream lines(section);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string start, end, size, offset;
    if (!(fields >> start >> end >> size >> offset) || start.rfind("0x", 0) != 0)
      continue;
    std::string rest;
    std::getline(fields, rest);
    // gdb 13 prints "Start End Size Offset [Perms] objfile"; perms only from gdb 14 on cores.
    std::istringstream rest_fields(rest);
    std::string first;
    rest_fields >> first;
    if (first.size() == 4 && first.find_first_not_of("rwxps-") == std::string::npos)
      std::getline(rest_fields, rest);
    rest.erase(0, rest.find_first_not_of(' '));
    mappings.emplace(std::stoull(start, nullptr, 16), std::stoull(end, nullptr, 16), rest);
  }
  return mappings;
}

// The bytes of a file from offset on, read in one go (istreambuf_iterator is slow on a core).
std::string readFileFrom(const std::string& path, uint64_t offset, uint64_t length = UINT64_MAX) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  uint64_t size = in ? static_cast<uint64_t>(in.tellg()) : 0;
  if (offset >= size)
    return "";
  std::string bytes(static_cast<size_t>(std::min(length, size - offset)), '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

void checkGdbShowsTheSample(const ExportedSample& exported) {
  const nlohmann::json& truth = exported.captured->truth();
  EXPECT_EQ(printedValue(exported.gdb.at("data_counter")),
            std::to_string(truth["data_counter"]["value"].get<uint64_t>()));
  EXPECT_NE(printedValue(exported.gdb.at("data_message"))
                .find("\"" + truth["data_message"]["value"].get<std::string>()),
            std::string::npos)
      << exported.gdb.at("data_message");
  EXPECT_EQ(printedValue(exported.gdb.at("bss_first")), std::to_string(12345u ^ kBssPattern));
  EXPECT_EQ(printedValue(exported.gdb.at("bss_last")),
            std::to_string((kBssElements - 1) ^ kBssPattern));
  EXPECT_NE(printedValue(exported.gdb.at("heap_small"))
                .find("\"" + truth["heap_small"]["value"].get<std::string>() + "\""),
            std::string::npos)
      << exported.gdb.at("heap_small");
  EXPECT_NE(printedValue(exported.gdb.at("heap_large"))
                .find("\"" + truth["heap_large"]["value"].get<std::string>() + "\\n"),
            std::string::npos)
      << exported.gdb.at("heap_large");
}

void checkThreads(const ExportedSample& exported) {
  const nlohmann::json& truth = exported.captured->truth();
  const std::string& threads = exported.gdb.at("threads");
  // One "Thread N (LWP tid)" header per thread, the main thread being thread 1.
  std::regex header(R"(Thread (\d+) \((?:Thread 0x[0-9a-f]+ )?\(?LWP (\d+)\)\)?)");
  std::map<int, int> lwp_by_thread;
  for (auto it = std::sregex_iterator(threads.begin(), threads.end(), header);
       it != std::sregex_iterator(); ++it)
    lwp_by_thread[std::stoi((*it)[1])] = std::stoi((*it)[2]);
  ASSERT_EQ(lwp_by_thread.size(), 3u) << threads;
  EXPECT_EQ(lwp_by_thread[1], truth["main_tid"].get<int>()) << threads;
  std::set<int> worker_tids;
  for (const auto& worker : truth["threads"])
    worker_tids.insert(worker["tid"].get<int>());
  for (const auto& [number, lwp] : lwp_by_thread) {
    if (number != 1) {
      EXPECT_TRUE(worker_tids.count(lwp)) << "LWP " << lwp << " is not a sample worker";
    }
  }
  // Both workers unwind into workerMain, the main thread into main.
  size_t worker_frames = 0;
  for (size_t at = threads.find("workerMain"); at != std::string::npos;
       at = threads.find("workerMain", at + 1))
    ++worker_frames;
  EXPECT_EQ(worker_frames, 2u) << threads;
  EXPECT_TRUE(std::regex_search(threads, std::regex(R"(#\d+ +(0x[0-9a-f]+ in )?main \()")))
      << threads;
  EXPECT_EQ(threads.find("?? ()"), std::string::npos) << "unnamed frames:\n" << threads;
}

void checkMappings(const ExportedSample& exported) {
  auto live = liveFileMappings(exported.captured->pid());
  auto seen = gdbMappings(exported.gdb.at("mappings"));
  EXPECT_FALSE(live.empty());
  EXPECT_EQ(seen, live) << exported.gdb.at("mappings");
}

void checkNotes(const ExportedSample& exported) {
  auto count = [&](const std::string& what) {
    size_t found = 0;
    for (size_t at = exported.notes.find(what); at != std::string::npos;
         at = exported.notes.find(what, at + 1))
      ++found;
    return found;
  };
  EXPECT_EQ(count("NT_PRSTATUS"), 3u) << exported.notes;
  EXPECT_EQ(count("NT_FPREGSET"), 3u) << exported.notes;
  EXPECT_EQ(count("NT_X86_XSTATE"), 3u) << exported.notes;
  EXPECT_EQ(count("NT_PRPSINFO"), 1u) << exported.notes;
  EXPECT_EQ(count("NT_AUXV"), 1u) << exported.notes;
  EXPECT_EQ(count("NT_FILE"), 1u) << exported.notes;
  // The kernel's sizes: struct elf_prstatus 336 bytes, struct elf_prpsinfo 136.
  EXPECT_TRUE(std::regex_search(exported.notes, std::regex(R"(CORE\s+0x00000150\s+NT_PRSTATUS)")))
      << exported.notes;
  EXPECT_TRUE(std::regex_search(exported.notes, std::regex(R"(CORE\s+0x00000088\s+NT_PRPSINFO)")))
      << exported.notes;
}

void checkSegmentsAndSparseness(const ExportedSample& exported) {
  const nlohmann::json& truth = exported.captured->truth();
  std::vector<LoadSegment> segments = loadSegments(exported.segments);
  ASSERT_FALSE(segments.empty()) << exported.segments;
  auto segmentAt = [&](uint64_t address) -> const LoadSegment* {
    for (const LoadSegment& segment : segments)
      if (address >= segment.vaddr && address < segment.vaddr + segment.memsz)
        return &segment;
    return nullptr;
  };
  // The untouched 32 GiB reservation and the MADV_DONTDUMP region are mapped, with no
  // contents in the file; the heap's bytes are there.
  const LoadSegment* reservation = segmentAt(addressOf(truth["reservation"]["addr"]));
  ASSERT_NE(reservation, nullptr);
  EXPECT_EQ(reservation->filesz, 0u);
  EXPECT_GE(reservation->memsz, truth["reservation"]["size"].get<uint64_t>());
  const LoadSegment* dontdump = segmentAt(addressOf(truth["dontdump"]["addr"]));
  ASSERT_NE(dontdump, nullptr);
  EXPECT_EQ(dontdump->filesz, 0u);
  const LoadSegment* heap = segmentAt(addressOf(truth["heap_small"]["addr"]));
  ASSERT_NE(heap, nullptr);
  EXPECT_GT(heap->filesz, 0u);
  EXPECT_EQ(heap->flags, "RW");
  // Every region of the live process is a segment (the sample is idle since the capture).
  EXPECT_EQ(segments.size(), exported.summary["export_core"]["load_segments"].get<size_t>());

  struct stat st {};
  ASSERT_EQ(::stat(exported.core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const nlohmann::json& summary = exported.summary["export_core"];
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), summary["file_size"].get<uint64_t>());
  // Holes: the disk holds the written bytes, headers and notes, not the file's length.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512,
            summary["bytes_written"].get<uint64_t>() + (1u << 20));
  EXPECT_LT(summary["bytes_written"].get<uint64_t>(), summary["contents_size"].get<uint64_t>());
  EXPECT_EQ(summary["threads"], 3);

  // The excluded region's contents (the secret repeated line after line) are in no segment.
  // The secret alone may be: it is a constant in the executable's .rodata, and the sample's
  // memcpy leaves a copy in vector registers, which the XSTATE notes hold.
  uint64_t data_start = UINT64_MAX;
  for (const LoadSegment& segment : segments)
    data_start = std::min(data_start, segment.offset);
  std::string contents = readFileFrom(exported.core, data_start);
  EXPECT_FALSE(contents.empty());
  const std::string secret = truth["dontdump"]["secret"].get<std::string>();
  EXPECT_EQ(contents.find(secret + "\n" + secret + "\n"), std::string::npos);
  EXPECT_NE(contents.find(truth["heap_small"]["value"].get<std::string>()), std::string::npos);
}

class ExportCorePie : public ::testing::Test {
protected:
  static void SetUpTestSuite() { exported_ = ExportedSample::create(SampleVariant::Pie).release(); }
  static void TearDownTestSuite() {
    delete exported_;
    exported_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(exported_, nullptr) << "the sample could not be exported"; }
  static inline ExportedSample* exported_ = nullptr;
};

class ExportCoreNoPie : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    exported_ = ExportedSample::create(SampleVariant::NoPie).release();
  }
  static void TearDownTestSuite() {
    delete exported_;
    exported_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(exported_, nullptr) << "the sample could not be exported"; }
  static inline ExportedSample* exported_ = nullptr;
};

TEST_F(ExportCorePie, GdbPrintsGlobalsBssAndHeapStrings) {
  checkGdbShowsTheSample(*exported_);
}
TEST_F(ExportCorePie, GdbUnwindsEveryThread) {
  checkThreads(*exported_);
}
TEST_F(ExportCorePie, GdbMappingsMatchTheLiveProcess) {
  checkMappings(*exported_);
}
TEST_F(ExportCorePie, NotesAreTheKernels) {
  checkNotes(*exported_);
}
TEST_F(ExportCorePie, SegmentsCoverRegionsAndTheFileIsSparse) {
  checkSegmentsAndSparseness(*exported_);
}

TEST_F(ExportCoreNoPie, GdbPrintsGlobalsBssAndHeapStrings) {
  checkGdbShowsTheSample(*exported_);
}
TEST_F(ExportCoreNoPie, GdbUnwindsEveryThread) {
  checkThreads(*exported_);
}
TEST_F(ExportCoreNoPie, GdbMappingsMatchTheLiveProcess) {
  checkMappings(*exported_);
}

// The analyzer reading the core back (the ELF core source) gives the archive's bytes: the heap
// and the anonymous tail of .bss, whole regions, holes included.
TEST_F(ExportCorePie, CoreReadsBackAsTheArchive) {
  const CapturedSample& sample = *exported_->captured;
  const nlohmann::json& truth = sample.truth();
  uint64_t bss_last = addressOf(truth["bss_array"]["addr"]) + 4ull * (kBssElements - 1);
  for (uint64_t address : {addressOf(truth["heap_small"]["addr"]), bss_last}) {
    std::optional<MapsLine> region = mappingOf(sample.pid(), address);
    ASSERT_TRUE(region.has_value());
    std::string what = hex(region->start) + "-" + hex(region->end);
    std::string from_archive = sample.file("archive-" + hex(address) + ".bin");
    std::string from_core = sample.file("core-" + hex(address) + ".bin");
    CommandResult archive_dump = runAnalyze({"dump", sample.archive(), what, "-o", from_archive});
    CommandResult core_dump = runAnalyze({"dump", exported_->core, what, "-o", from_core});
    ASSERT_EQ(archive_dump.exit_code, 0) << archive_dump.err;
    ASSERT_EQ(core_dump.exit_code, 0) << core_dump.err;
    std::string expected = readFileFrom(from_archive, 0);
    EXPECT_EQ(expected.size(), region->end - region->start);
    EXPECT_TRUE(readFileFrom(from_core, 0) == expected) << what << " differs";
  }
}

TEST_F(ExportCorePie, RefusesToOverwriteWithoutForce) {
  const std::string target = exported_->captured->file("existing.core");
  {
    std::ofstream existing(target);
    existing << "keep me";
  }
  CommandResult refused = runAnalyze({"export-core", exported_->captured->archive(), "-o", target});
  EXPECT_EQ(refused.exit_code, 2);
  expectOneErrorLine(refused.err);
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(readWholeFile(target), "keep me");

  CommandResult forced =
      runAnalyze({"export-core", exported_->captured->archive(), "-o", target, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(readFileFrom(target, 0, 4), "\x7f"
                                        "ELF");
  // Text output names the file and lists the notes.
  EXPECT_NE(forced.out.find("NT_PRSTATUS"), std::string::npos) << forced.out;
}

TEST_F(ExportCorePie, BadInputIsOneErrorLine) {
  CommandResult missing = runAnalyze({"export-core", exported_->captured->file("no-such.psnap"),
                                      "-o", exported_->captured->file("never.core")});
  EXPECT_EQ(missing.exit_code, 2);
  expectOneErrorLine(missing.err);
  struct stat st {};
  EXPECT_NE(::stat(exported_->captured->file("never.core").c_str(), &st), 0);

  CommandResult no_directory = runAnalyze({"export-core", exported_->captured->archive(), "-o",
                                           exported_->captured->file("nodir/x.core")});
  EXPECT_EQ(no_directory.exit_code, 2);
  expectOneErrorLine(no_directory.err);

  CommandResult to_stdout = runAnalyze({"export-core", exported_->captured->archive(), "-o", "-"});
  EXPECT_EQ(to_stdout.exit_code, 2);
  expectOneErrorLine(to_stdout.err);
}

} // namespace
} // namespace procsnap::test

// End-to-end: procsnap-capture on the PIE and non-PIE samples, then every value the sample
// reports about its own memory is read back from the archive with ArchiveReader.

#include "tests/e2e/test_capture_support.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sys/stat.h>

namespace procsnap::test {
namespace {

using nlohmann::json;

constexpr uint32_t kBssPattern = 0x5a5a5a5a;
constexpr uint32_t kNtPrstatus = 1;
// The 32 GiB reservation must cost nothing; the rest of the sample is ~15 MiB.
constexpr uint64_t kMaxSampleArchiveBytes = 64ull << 20;

struct Captured {
  std::unique_ptr<SampleProcess> sample;
  TempDir dir;
  std::string path;
  CommandResult run;
  std::unique_ptr<ArchiveReader> reader;
};

// Starts the sample, captures it into a fresh directory with extra_args, opens the archive.
void captureSample(SampleVariant variant, const std::vector<std::string>& extra_args,
                   std::optional<Captured>& out) {
  auto sample = SampleProcess::start(variant);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-e2e");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("sample.psnap");
  std::vector<std::string> args = {std::to_string((*sample)->pid()), "-o", path, "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  CommandResult run = runCapture(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  out.emplace(
      Captured{std::move(*sample), std::move(*dir), path, std::move(run), std::move(*reader)});
}

void expectString(const ArchiveReader& reader, const json& item, const char* what) {
  const std::string value = item.at("value").get<std::string>();
  auto got = readString(reader, addressOf(item.at("addr")), value.size());
  ASSERT_TRUE(got.has_value()) << what << " not stored";
  EXPECT_EQ(*got, value) << what;
}

void checkSampleContents(const Captured& captured) {
  const json& truth = captured.sample->truth();
  const ArchiveReader& reader = *captured.reader;

  // data_counter: a little-endian u64.
  {
    auto bytes = readMemory(reader, addressOf(truth["data_counter"]["addr"]), 8);
    ASSERT_TRUE(bytes.has_value());
    uint64_t value = 0;
    std::memcpy(&value, bytes->data(), 8);
    EXPECT_EQ(value, truth["data_counter"]["value"].get<uint64_t>());
  }
  expectString(reader, truth["data_message"], "data_message");
  expectString(reader, truth["rodata_string"], "rodata_string");
  expectString(reader, truth["heap_small"], "heap_small");
  expectString(reader, truth["heap_large"], "heap_large");
  expectString(reader, truth["memfd"], "memfd");
  for (const json& thread : truth["threads"]) {
    auto got = readString(reader, addressOf(thread["stack_marker_addr"]),
                          thread["stack_marker"].get<std::string>().size());
    ASSERT_TRUE(got.has_value()) << "stack of " << thread["name"];
    EXPECT_EQ(*got, thread["stack_marker"].get<std::string>());
  }
  // .bss: words at the start, in the file-backed page, across the anonymous part, the end.
  const uint64_t bss = addressOf(truth["bss_array"]["addr"]);
  const uint64_t words = truth["bss_array"]["size"].get<uint64_t>() / 4;
  for (uint64_t i : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, words / 3, words / 2, words - 1}) {
    auto bytes = readMemory(reader, bss + 4 * i, 4);
    ASSERT_TRUE(bytes.has_value()) << "bss word " << i;
    uint32_t word = 0;
    std::memcpy(&word, bytes->data(), 4);
    EXPECT_EQ(word, static_cast<uint32_t>(i) ^ kBssPattern) << "bss word " << i;
  }

  const SnapshotMetadata& metadata = reader.metadata();
  EXPECT_FALSE(metadata.partial);
  EXPECT_EQ(metadata.process.pid, captured.sample->pid());

  // Every byte of every region is accounted for: the runs tile the region, and the stored
  // runs are exactly the bytes held in chunks.
  uint64_t stored_total = 0;
  for (const RegionRecord& region : metadata.regions) {
    uint64_t cursor = region.map().start;
    uint64_t stored = 0;
    for (const PageRun& run : region.pages) {
      EXPECT_EQ(run.start, cursor)
          << "gap in " << region.map().path << " at 0x" << std::hex << cursor;
      cursor = run.end;
      if (run.state == PageState::Stored)
        stored += run.end - run.start;
    }
    EXPECT_EQ(cursor, region.map().end)
        << "runs do not reach the end of 0x" << std::hex << region.map().start;
    stored_total += stored;
  }
  uint64_t chunk_total = 0;
  for (const ChunkInfo& chunk : reader.chunks())
    chunk_total += chunk.size;
  EXPECT_EQ(stored_total, chunk_total);
  EXPECT_EQ(reader.metadata().stats.bytes_stored, chunk_total);

  // The 32 GiB reservation is recorded, not stored.
  const uint64_t reservation = addressOf(truth["reservation"]["addr"]);
  bool found_reservation = false;
  for (const RegionRecord& region : metadata.regions) {
    if (region.map().start <= reservation && reservation < region.map().end) {
      found_reservation = true;
      for (const PageRun& run : region.pages)
        EXPECT_NE(run.state, PageState::Stored);
    }
  }
  EXPECT_TRUE(found_reservation);
  EXPECT_LT(reader.fileSize(), kMaxSampleArchiveBytes);

  // Every thread, with registers and its name.
  std::map<int32_t, const ThreadRecord*> threads;
  for (const ThreadRecord& thread : metadata.threads)
    threads[thread.tid] = &thread;
  ASSERT_FALSE(metadata.threads.empty());
  EXPECT_EQ(metadata.threads.front().tid, captured.sample->pid()); // main thread first
  std::vector<std::pair<int32_t, std::string>> expected = {{truth["main_tid"].get<int32_t>(), ""}};
  for (const json& thread : truth["threads"])
    expected.emplace_back(thread["tid"].get<int32_t>(), thread["name"].get<std::string>());
  for (const auto& [tid, name] : expected) {
    ASSERT_TRUE(threads.count(tid)) << "thread " << tid << " missing";
    const ThreadRecord& thread = *threads[tid];
    if (!name.empty()) {
      EXPECT_EQ(thread.name, name);
    }
    bool has_prstatus = false;
    for (const RegisterSet& set : thread.register_sets)
      has_prstatus = has_prstatus || (set.note_type == kNtPrstatus && set.bytes.size() >= 216);
    EXPECT_TRUE(has_prstatus) << "thread " << tid;
    EXPECT_NE(thread.pc, 0u);
    EXPECT_NE(thread.sp, 0u);
  }

  // The target was thawed and left alone.
  EXPECT_TRUE(waitRunningUntraced(*captured.sample, std::chrono::milliseconds(1000)));
  EXPECT_TRUE(captured.sample->alive());
}

TEST(CaptureE2E, PieSampleReadsBackExactly) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::Pie, {}, captured);
  ASSERT_TRUE(captured);
  checkSampleContents(*captured);
  // The MADV_DONTDUMP region is nowhere in the archive. The secret alone is also a string
  // literal in the sample's .rodata (stored, NUL-terminated); the region holds it repeated
  // with newlines, which exists nowhere else.
  const json& dontdump = captured->sample->truth()["dontdump"];
  const std::string secret = dontdump["secret"];
  EXPECT_FALSE(anyChunkContains(*captured->reader, secret + "\n" + secret));
  EXPECT_EQ(captured->reader->findChunk(addressOf(dontdump["addr"])), nullptr);
}

TEST(CaptureE2E, NonPieSampleReadsBackExactly) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::NoPie, {"-j", "1", "--level", "1"}, captured);
  ASSERT_TRUE(captured);
  checkSampleContents(*captured);
}

TEST(CaptureE2E, AllIncludesTheDontDumpRegion) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::Pie, {"--all"}, captured);
  ASSERT_TRUE(captured);
  const json& dontdump = captured->sample->truth()["dontdump"];
  const std::string secret = dontdump["secret"];
  EXPECT_TRUE(anyChunkContains(*captured->reader, secret + "\n" + secret));
  auto got = readString(*captured->reader, addressOf(dontdump["addr"]),
                        dontdump["secret"].get<std::string>().size());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, dontdump["secret"].get<std::string>());
}

// A private file mapping the target never touched: its pages are not present in the target's
// page tables, but they hold the file's bytes, and procsnap's policy stores private
// file-backed mappings (capture_policy.h), so reading the archive must give them.
TEST(CaptureE2E, UntouchedFileMappingIsStored) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::Pie, {}, captured);
  ASSERT_TRUE(captured);
  expectString(*captured->reader, captured->sample->truth()["file_mapping"], "file_mapping");
}

TEST(CaptureE2E, JsonReportParsesAndMatchesTheArchive) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::Pie, {"--stats"}, captured);
  ASSERT_TRUE(captured);
  const json report = json::parse(captured->run.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << captured->run.out;
  EXPECT_EQ(report["result"], "success");
  EXPECT_EQ(report["exit_code"], 0);
  EXPECT_EQ(report["output"], captured->path);
  EXPECT_EQ(report["pid"], captured->sample->pid());
  EXPECT_EQ(report["archive_bytes"].get<uint64_t>(), captured->reader->fileSize());
  const json& stats = report["stats"];
  const CaptureStats& archived = captured->reader->metadata().stats;
  EXPECT_EQ(stats["bytes_stored"].get<uint64_t>(), archived.bytes_stored);
  EXPECT_EQ(stats["chunks"].get<uint64_t>(), captured->reader->chunks().size());
  EXPECT_GT(stats["bytes_compressed"].get<uint64_t>(), 0u);
  EXPECT_GT(stats["pause_seconds"].get<double>(), 0.0);
  EXPECT_GE(stats["bytes_skipped"]["not-present"].get<uint64_t>(), 32ull << 30);
  EXPECT_EQ(stats["bytes_skipped"]["excluded-dontdump"].get<uint64_t>(), 65536u);
  for (const char* phase : {"freeze", "metadata", "copy", "thaw", "modules", "compress", "write"})
    EXPECT_TRUE(stats["phase_seconds"].contains(phase)) << phase;
  EXPECT_EQ(stats["threads"].get<uint32_t>(), captured->reader->metadata().threads.size());
  // --stats goes to stderr as text.
  EXPECT_NE(captured->run.err.find("target pause"), std::string::npos) << captured->run.err;
  // The archive is private: process memory holds secrets.
  struct stat st {};
  ASSERT_EQ(::stat(captured->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(CaptureE2E, ModulesAreSketchedWithBuildIds) {
  std::optional<Captured> captured;
  captureSample(SampleVariant::Pie, {"--embed-binaries"}, captured);
  ASSERT_TRUE(captured);
  const std::string exe = captured->sample->truth()["exe"];
  const auto& modules = captured->reader->metadata().modules;
  const ModuleRecord* main_module = nullptr;
  for (const ModuleRecord& module : modules)
    if (module.path == exe)
      main_module = &module;
  ASSERT_NE(main_module, nullptr) << "no module for " << exe;
  EXPECT_FALSE(main_module->build_id.empty());
  EXPECT_EQ(main_module->build_id_memory, main_module->build_id);
  EXPECT_TRUE(main_module->embedded);
  // Embedded binaries are deduplicated by build-id.
  std::set<std::string> build_ids;
  for (const ModuleRecord& module : modules)
    if (module.embedded && !module.build_id.empty()) {
      EXPECT_TRUE(build_ids.insert(module.build_id).second) << module.path;
    }
}

TEST(CaptureE2E, DefaultOutputNameInTheWorkingDirectory) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-cwd");
  ASSERT_TRUE(dir.ok());
  // runCommand has no cwd parameter: go through sh's cd.
  const std::string pid = std::to_string((*sample)->pid());
  CommandResult run =
      runCommand({"sh", "-c",
                  "cd '" + dir->path() + "' && exec '" + captureBinary() + "' " + pid + " --quiet"},
                 kCaptureTimeoutSeconds);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(run.out.empty());
  EXPECT_TRUE(run.err.empty()) << run.err; // no progress line when stderr is not a terminal
  CommandResult listing = runCommand({"ls", "-A", dir->path()}, 10);
  // sample_target.PID.YYYYMMDDTHHMMSSZ.psnap
  const std::string prefix = "sample_target." + pid + ".";
  ASSERT_EQ(listing.out.rfind(prefix, 0), 0u) << listing.out;
  const std::string name = listing.out.substr(0, listing.out.find('\n'));
  EXPECT_EQ(name.size(), prefix.size() + 16 + 6) << name;
  EXPECT_TRUE(name.ends_with("Z.psnap")) << name;
  EXPECT_TRUE(ArchiveReader::open(dir->file(name)).ok());
}

} // namespace
} // namespace procsnap::test

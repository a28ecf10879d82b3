// The address-space model on a real layout: this test process's own smaps, with its own
// binary as the module (embedded, or as a sketch without code bytes), written as an archive
// whose only stored page is the one holding a known global.
#include "analyze/model/address_space.h"

#include "common/proc/smaps.h"
#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <llvm/Support/Path.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

extern "C" __attribute__((used, noinline)) int procsnap_space_test_function(int x) {
  return x * 5 + 2;
}
__attribute__((used)) uint64_t procsnap_space_test_global[8] = {0x1111, 0x2222, 0x3333};
// Large enough that .bss runs past the file-backed rw mapping into an anonymous one.
__attribute__((used)) char procsnap_space_test_bss[3 << 20];

namespace procsnap::analyze {
namespace {

constexpr uint64_t kPage = 4096;

std::string selfPath() {
  char buffer[4096];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

enum class ModuleData { Embedded, SketchWithoutCode, None };

// Everything one parameter's tests look at, built once per parameter: reading and parsing a
// 30 MB test binary per test would make the suite slow.
struct World {
  std::optional<test::TempDir> dir_;
  std::unique_ptr<Snapshot> snapshot_;
  std::unique_ptr<ModuleLocator> locator_;
  std::optional<AddressSpace> space_;
  std::vector<std::string> warnings_;

  void build(ModuleData param);
  ModuleData GetParam() const { return param_; }
  ModuleData param_ = ModuleData::None;
};

Result<ModuleSketch> wholeFileSketch(const std::string& path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, false, false);
  if (!buffer)
    return Error::make(ErrorCode::NotFound, "cannot read " + path);
  ModuleSketch sketch;
  sketch.record.path = path;
  sketch.record.file_size = (*buffer)->getBufferSize();
  sketch.record.embedded = true;
  sketch.file_size = (*buffer)->getBufferSize();
  ModuleSketch::Piece piece;
  piece.bytes.resize(sketch.file_size);
  std::memcpy(piece.bytes.data(), (*buffer)->getBufferStart(), sketch.file_size);
  sketch.pieces.push_back(std::move(piece));
  return sketch;
}

void World::build(ModuleData param) {
  param_ = param;
  [&] {
    procsnap_space_test_bss[12345] = 1; // touch, so the page is really there
    auto dir = test::TempDir::create("analyze-space");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir.value()));

    auto smaps = parseSmaps(readFile("/proc/self/smaps"));
    ASSERT_TRUE(smaps.ok()) << smaps.error().message;
    SnapshotMetadata metadata;
    metadata.process.pid = getpid();
    metadata.process.exe = selfPath();
    metadata.host.page_size = kPage;
    std::vector<MapsEntry> maps;
    for (const SmapsEntry& entry : *smaps)
      maps.push_back(entry.map);
    std::vector<RegionKind> kinds = classifyRegions(maps);
    const uint64_t global_page =
        reinterpret_cast<uint64_t>(&procsnap_space_test_global) & ~(kPage - 1);
    for (size_t i = 0; i < smaps->size(); ++i) {
      RegionRecord region;
      region.smaps = (*smaps)[i];
      region.kind = kinds[i];
      const MapsEntry& map = region.map();
      if (global_page >= map.start && global_page < map.end) {
        region.pages = {{map.start, global_page, PageState::NotPresent},
                        {global_page, global_page + kPage, PageState::Stored},
                        {global_page + kPage, map.end, PageState::NotPresent}};
        std::erase_if(region.pages, [](const PageRun& run) { return run.start == run.end; });
      } else {
        region.pages = {{map.start, map.end, PageState::NotPresent}};
      }
      metadata.regions.push_back(std::move(region));
    }
    auto sketch = wholeFileSketch(selfPath());
    ASSERT_TRUE(sketch.ok()) << sketch.error().message;
    auto build_id = readBuildId(selfPath());
    ASSERT_TRUE(static_cast<bool>(build_id));
    sketch->record.build_id = *build_id;
    metadata.modules.push_back(sketch->record);
    metadata.modules.back().embedded = GetParam() == ModuleData::Embedded;

    test::SynthOptions options;
    if (GetParam() == ModuleData::SketchWithoutCode) {
      // Drop the code bytes, as a capture's sketch does.
      auto whole = llvm::MemoryBuffer::getFile(selfPath(), false, false);
      ASSERT_TRUE(static_cast<bool>(whole));
      auto module = ElfModule::create(std::move(*whole));
      ASSERT_TRUE(static_cast<bool>(module));
      const ElfSection* text = (*module)->findSection(".text");
      ASSERT_NE(text, nullptr);
      std::vector<std::byte> bytes = std::move(sketch->pieces[0].bytes);
      sketch->pieces.clear();
      sketch->pieces.push_back({0, {bytes.begin(), bytes.begin() + text->offset}});
      sketch->pieces.push_back(
          {text->offset + text->size, {bytes.begin() + text->offset + text->size, bytes.end()}});
      sketch->record.embedded = false;
    }
    if (GetParam() != ModuleData::None)
      options.modules.push_back(*sketch);
    test::SyntheticChunk chunk;
    chunk.address = global_page;
    chunk.bytes.resize(kPage);
    // Through the kernel, not memcpy: the page holds other globals and ASan's redzones
    // between them, which an instrumented copy of the whole page would report.
    {
      const int mem = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
      ASSERT_GE(mem, 0);
      const ssize_t got = ::pread(mem, chunk.bytes.data(), kPage, static_cast<off_t>(global_page));
      ::close(mem);
      ASSERT_EQ(got, static_cast<ssize_t>(kPage));
    }
    std::string path = dir_->file("self.psnap");
    auto written = test::writeSyntheticArchive(path, metadata, {chunk}, options);
    ASSERT_TRUE(written.ok()) << written.error().message;

    auto snapshot = openSnapshot(path);
    ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
    snapshot_ = std::move(*snapshot);
    LocatorOptions locator_options;
    locator_options.use_original_paths = false; // only what the archive holds
    locator_options.debug_dirs = {dir_->path()};
    locator_ = std::make_unique<ModuleLocator>(
        *snapshot_, locator_options,
        [this](llvm::StringRef warning) { warnings_.push_back(warning.str()); });
    auto space = AddressSpace::build(*snapshot_, *locator_);
    ASSERT_TRUE(static_cast<bool>(space)) << llvm::toString(space.takeError());
    space_.emplace(std::move(*space));
  }();
}

class AddressSpaceTest : public ::testing::TestWithParam<ModuleData> {
protected:
  static void TearDownTestSuite() { worlds().clear(); }
  void SetUp() override {
    auto& world = worlds()[GetParam()];
    if (!world) {
      world = std::make_unique<World>();
      world->build(GetParam());
    }
    ASSERT_TRUE(world->space_.has_value()) << "the world could not be built";
    snapshot_ = world->snapshot_.get();
    locator_ = world->locator_.get();
    space_ = &*world->space_;
    warnings_ = world->warnings_;
  }
  static std::map<ModuleData, std::unique_ptr<World>>& worlds() {
    static std::map<ModuleData, std::unique_ptr<World>> all;
    return all;
  }

  Snapshot* snapshot_ = nullptr;
  ModuleLocator* locator_ = nullptr;
  const AddressSpace* space_ = nullptr;
  std::vector<std::string> warnings_;
};

TEST_P(AddressSpaceTest, ModuleRegionsAreFullyAccountedForBySpans) {
  ASSERT_EQ(space_->modules().size(), 1u);
  const LoadedModule& module = space_->modules()[0];
  EXPECT_EQ(module.name, llvm::sys::path::filename(selfPath()).str());
  ASSERT_GE(module.region_indices.size(), 3u);
  const auto& regions = snapshot_->metadata().regions;
  for (int region_index : module.region_indices) {
    const MapsEntry& map = regions[static_cast<size_t>(region_index)].map();
    uint64_t cursor = map.start;
    for (const SectionSpan& span : module.spans) {
      if (span.region_index != region_index)
        continue;
      EXPECT_EQ(span.start, cursor) << "gap or overlap in the spans of " << std::hex << map.start;
      EXPECT_LT(span.start, span.end);
      cursor = span.end;
    }
    EXPECT_EQ(cursor, map.end) << "spans do not reach the end of " << std::hex << map.start;
  }
  uint64_t spans_total = 0, regions_total = 0;
  for (const SectionSpan& span : module.spans)
    spans_total += span.size();
  for (int region_index : module.region_indices)
    regions_total += regions[static_cast<size_t>(region_index)].map().size();
  EXPECT_EQ(spans_total, regions_total);
}

TEST_P(AddressSpaceTest, LookupNamesGlobalsFunctionsAndSections) {
  const uint64_t global = reinterpret_cast<uint64_t>(&procsnap_space_test_global);
  AddressInfo info = space_->lookup(global + 12);
  ASSERT_NE(info.region, nullptr);
  EXPECT_EQ(info.module_index, 0);
  if (GetParam() == ModuleData::None) {
    EXPECT_EQ(info.section, "<?>");
    EXPECT_EQ(info.symbol, "");
    EXPECT_EQ(warnings_.size(), 1u);
    return;
  }
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(info.section, ".data");
  EXPECT_EQ(info.symbol, "procsnap_space_test_global");
  EXPECT_EQ(info.symbol_offset, 12u);
  EXPECT_EQ(info.symbol_address, global);
  EXPECT_EQ(info.symbol_size, sizeof procsnap_space_test_global);
  EXPECT_NE(info.segment.find("rw-"), std::string::npos) << info.segment;

  const uint64_t function = reinterpret_cast<uint64_t>(&procsnap_space_test_function);
  AddressInfo code = space_->lookup(function + 1);
  EXPECT_EQ(code.section, ".text");
  EXPECT_EQ(code.symbol, "procsnap_space_test_function");
  EXPECT_NE(code.segment.find("r-x"), std::string::npos) << code.segment;

  auto found = space_->findSymbol("procsnap_space_test_global");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].address, global);
  auto qualified = space_->findSymbol("exe!procsnap_space_test_function");
  ASSERT_EQ(qualified.size(), 1u);
  EXPECT_EQ(qualified[0].address, function);
  EXPECT_TRUE(space_->findSymbol("nosuchmodule!procsnap_space_test_function").empty());

  auto data = space_->findSection(llvm::sys::path::filename(selfPath()), ".data");
  ASSERT_TRUE(data.has_value());
  EXPECT_TRUE(data->contains(global));

  // The stored page reads back as the live bytes.
  std::vector<uint8_t> bytes(sizeof procsnap_space_test_global);
  auto read = snapshot_->read(global, bytes);
  ASSERT_TRUE(static_cast<bool>(read)) << llvm::toString(read.takeError());
  EXPECT_TRUE(read->allStored());
  EXPECT_EQ(std::memcmp(bytes.data(), procsnap_space_test_global, bytes.size()), 0);
}

TEST_P(AddressSpaceTest, BssSpansTheFileMappingTailAndTheAnonymousMapping) {
  if (GetParam() == ModuleData::None)
    GTEST_SKIP() << "no ELF data, no .bss";
  const LoadedModule& module = space_->modules()[0];
  ASSERT_TRUE(module.bss.has_value());
  const uint64_t bss_array = reinterpret_cast<uint64_t>(&procsnap_space_test_bss);
  EXPECT_TRUE(module.bss->contains(bss_array));
  EXPECT_TRUE(module.bss->contains(bss_array + sizeof procsnap_space_test_bss - 1));
  uint64_t in_file = 0, in_anon = 0;
  const auto& regions = snapshot_->metadata().regions;
  for (const SectionSpan& span : module.spans) {
    if (span.label != ".bss")
      continue;
    EXPECT_GE(span.start, module.bss->start);
    EXPECT_LE(span.end, module.bss->end);
    const RegionRecord& region = regions[static_cast<size_t>(span.region_index)];
    (region.map().path.empty() ? in_anon : in_file) += span.size();
  }
  EXPECT_EQ(in_file + in_anon, module.bss->size());
  EXPECT_GT(in_anon, 0u);
  AddressInfo info = space_->lookup(bss_array + (2 << 20));
  EXPECT_EQ(info.section, ".bss");
  EXPECT_EQ(info.symbol, "procsnap_space_test_bss");
  EXPECT_EQ(info.module_index, 0);
  EXPECT_TRUE(info.region->map().path.empty()); // the anonymous part
}

TEST_P(AddressSpaceTest, ModuleSourceIsRecorded) {
  const LocatedModule* located = locator_->locate(0);
  switch (GetParam()) {
  case ModuleData::Embedded:
    ASSERT_NE(located, nullptr);
    EXPECT_EQ(located->where, "embedded");
    break;
  case ModuleData::SketchWithoutCode:
    ASSERT_NE(located, nullptr);
    EXPECT_EQ(located->where, "sketch");
    EXPECT_EQ(located->debug_path, ""); // a sketch's zeroed DWARF must not be used
    break;
  case ModuleData::None:
    EXPECT_EQ(located, nullptr);
    break;
  }
}

INSTANTIATE_TEST_SUITE_P(Sources, AddressSpaceTest,
                         ::testing::Values(ModuleData::Embedded, ModuleData::SketchWithoutCode,
                                           ModuleData::None),
                         [](const auto& info) {
                           switch (info.param) {
                           case ModuleData::Embedded:
                             return "Embedded";
                           case ModuleData::SketchWithoutCode:
                             return "Sketch";
                           default:
                             return "None";
                           }
                         });

} // namespace
} // namespace procsnap::analyze

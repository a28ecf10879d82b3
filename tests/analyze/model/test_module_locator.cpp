// The module locator works once per distinct file (issue 13): a forged archive naming the same
// file in thousands of module records parses it once and warns once.
#include "analyze/model/module_locator.h"

#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace procsnap::analyze {
namespace {

constexpr size_t kCopies = 500;

TEST(ModuleLocator, RecordsNamingOneFileShareOneParseAndOneWarning) {
  auto dir = test::TempDir::create("module-locator");
  ASSERT_TRUE(dir.ok());
  SnapshotMetadata metadata = test::syntheticMetadata();
  metadata.modules.clear();
  ModuleRecord self;
  self.path = std::filesystem::read_symlink("/proc/self/exe").string();
  self.file_size = std::filesystem::file_size(self.path);
  ModuleRecord missing;
  missing.path = "/nonexistent/procsnap-test/libmissing.so";
  missing.file_size = 4096;
  for (size_t i = 0; i < kCopies; ++i) {
    metadata.modules.push_back(self);
    metadata.modules.push_back(missing);
  }
  const std::string path = dir->file("copies.psnap");
  ASSERT_TRUE(test::writeSyntheticArchive(path, metadata, test::syntheticChunks(metadata)).ok());
  auto snapshot = openSnapshot(path);
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());

  std::vector<std::string> warnings;
  ModuleLocator locator(**snapshot, LocatorOptions{},
                        [&](llvm::StringRef message) { warnings.push_back(message.str()); });
  const LocatedModule* first = locator.locate(0);
  ASSERT_NE(first, nullptr) << (warnings.empty() ? "" : warnings[0]);
  EXPECT_EQ(first->file_path, self.path);
  for (size_t i = 0; i < metadata.modules.size(); ++i) {
    const LocatedModule* located = locator.locate(i);
    EXPECT_EQ(located, i % 2 == 0 ? first : nullptr) << i;
  }
  EXPECT_EQ(warnings.size(), 1u);
}

} // namespace
} // namespace procsnap::analyze

// The module sketcher's size budget (issue 13): a sketch over its budget leaves out the symbol
// tables and says so; one whose headers alone do not fit is refused. Run on this test binary,
// whose .symtab is most of a sketch.
#include "capture/module_sketcher.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace procsnap {
namespace {

uint64_t storedBytes(const ModuleSketch& sketch) {
  uint64_t total = 0;
  for (const ModuleSketch::Piece& piece : sketch.pieces)
    total += piece.bytes.size();
  return total;
}

class SketchBudget : public ::testing::Test {
protected:
  void SetUp() override {
    fd_ = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
    base_.path = std::filesystem::read_symlink("/proc/self/exe").string();
    base_.file_size = std::filesystem::file_size(base_.path);
  }
  void TearDown() override {
    if (fd_ >= 0)
      ::close(fd_);
  }
  Result<ModuleSketch> sketch(uint64_t budget, std::vector<std::string>& warnings) {
    SketchOptions options;
    options.max_sketch_bytes = budget;
    return sketchModule(fd_, base_, options, &warnings);
  }
  int fd_ = -1;
  ModuleRecord base_;
};

TEST_F(SketchBudget, OverTheBudgetTheSymbolTablesAreLeftOutWithAWarning) {
  std::vector<std::string> warnings;
  auto full = sketch(kMaxSketchBytesPerModule, warnings);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  const uint64_t full_bytes = storedBytes(*full);

  std::vector<std::string> cut_warnings;
  auto cut = sketch(full_bytes - 1, cut_warnings);
  ASSERT_TRUE(cut.ok()) << cut.error().message;
  EXPECT_LT(storedBytes(*cut), full_bytes / 2) << "the symbol tables should be most of it";
  EXPECT_LE(storedBytes(*cut), full_bytes - 1);
  ASSERT_FALSE(cut_warnings.empty());
  EXPECT_NE(cut_warnings.front().find("budget"), std::string::npos) << cut_warnings.front();
  EXPECT_EQ(cut_warnings.front().find('\n'), std::string::npos);
}

TEST_F(SketchBudget, HeadersBeyondTheBudgetGiveAnError) {
  std::vector<std::string> warnings;
  auto none = sketch(64, warnings);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("budget"), std::string::npos) << none.error().message;
  EXPECT_EQ(none.error().message.find('\n'), std::string::npos);
}

} // namespace
} // namespace procsnap

#include "capture/archive_output.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {
namespace {

TEST(ArchiveOutput, FileIsStagedThenRenamed) {
  auto dir = test::TempDir::create("procsnap-archive-output");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  const std::string path = dir->file("a.psnap");
  {
    auto output = ArchiveOutput::create(path, false);
    ASSERT_TRUE(output.ok()) << output.error().message;
    EXPECT_EQ((*output)->path(), path);
    ASSERT_EQ(::write((*output)->fd(), "psnap", 5), 5);
    EXPECT_NE(::access(path.c_str(), F_OK), 0); // not under the final name before commit
    EXPECT_EQ((*output)->describeWriteError(Error::make(ErrorCode::NoSpace, "write")).message,
              "no space left on device while writing " + path);
    ASSERT_TRUE((*output)->commit().ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
}

TEST(DefaultOutputName, SanitizesCommAndFormatsUtc) {
  // 2021-03-04T05:06:07Z
  EXPECT_EQ(defaultOutputName("sample_target", 42, 1614834367),
            "sample_target.42.20210304T050607Z.psnap");
  EXPECT_EQ(defaultOutputName("a/b c\x01", 7, 0), "a_b_c_.7.19700101T000000Z.psnap");
  EXPECT_EQ(defaultOutputName(".hidden", 7, 0), "_hidden.7.19700101T000000Z.psnap");
  EXPECT_EQ(defaultOutputName("", 7, 0), "process.7.19700101T000000Z.psnap");
}

} // namespace
} // namespace procsnap

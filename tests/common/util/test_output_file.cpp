#include "common/util/output_file.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace procsnap {
namespace {

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* entry = ::readdir(dir))
      if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..")
        names.emplace_back(entry->d_name);
    ::closedir(dir);
  }
  return names;
}

std::string readAll(const std::string& path) {
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return "<missing>";
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return text;
}

void writeString(int fd, const std::string& text) {
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

using test::TempDir;

TempDir makeDir() {
  auto dir = TempDir::create("procsnap-output");
  if (!dir.ok()) {
    // Nothing in these tests can run without a directory.
    std::fprintf(stderr, "cannot create a temporary directory: %s\n", dir.error().message.c_str());
    std::abort();
  }
  return std::move(*dir);
}

TEST(OutputFile, WritesUnderTemporaryNameThenRenames) {
  TempDir dir = makeDir();
  const std::string path = dir.file("a.psnap");
  auto file = OutputFile::create(path, false);
  ASSERT_TRUE(file.ok()) << file.error().message;
  writeString((*file)->fd(), "hello");
  // Before commit only the temporary file exists, hidden, with the pid in its name.
  auto names = listDir(dir.path());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].rfind(".a.psnap.tmp." + std::to_string(::getpid()) + ".", 0), 0u) << names[0];
  struct stat st {};
  ASSERT_EQ(::stat((*file)->temporaryPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE((*file)->commit().ok());
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"a.psnap"});
  EXPECT_EQ(readAll(path), "hello");
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(OutputFile, DestructionWithoutCommitRemovesTheTemporaryFile) {
  TempDir dir = makeDir();
  {
    auto file = OutputFile::create(dir.file("b.psnap"), false);
    ASSERT_TRUE(file.ok());
    writeString((*file)->fd(), "partial");
  }
  EXPECT_TRUE(listDir(dir.path()).empty());
}

TEST(OutputFile, RefusesExistingFileUnlessForced) {
  TempDir dir = makeDir();
  const std::string path = dir.file("c.psnap");
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    writeString(fd, "old");
    ::close(fd);
  }
  auto refused = OutputFile::create(path, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("output file exists: " + path), std::string::npos);
  EXPECT_EQ(listDir(dir.path()).size(), 1u);

  auto forced = OutputFile::create(path, true);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  writeString((*forced)->fd(), "new");
  ASSERT_TRUE((*forced)->commit().ok());
  EXPECT_EQ(readAll(path), "new");
}

TEST(OutputFile, RaceWithAFileAppearingIsCaughtAtRename) {
  TempDir dir = makeDir();
  const std::string path = dir.file("d.psnap");
  auto file = OutputFile::create(path, false);
  ASSERT_TRUE(file.ok());
  writeString((*file)->fd(), "mine");
  { // someone else creates the destination meanwhile
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0);
    writeString(fd, "theirs");
    ::close(fd);
  }
  auto committed = (*file)->commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_NE(committed.error().message.find("exists"), std::string::npos);
  EXPECT_EQ(readAll(path), "theirs");
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"d.psnap"}); // temp removed
}

TEST(OutputFile, NeverFollowsOrReplacesASymlink) {
  TempDir dir = makeDir();
  const std::string victim = dir.file("victim");
  const std::string link = dir.file("link.psnap");
  {
    const int fd = ::open(victim.c_str(), O_WRONLY | O_CREAT, 0644);
    writeString(fd, "precious");
    ::close(fd);
  }
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  for (bool force : {false, true}) {
    auto file = OutputFile::create(link, force);
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.error().message.find("symbolic link"), std::string::npos);
  }
  EXPECT_EQ(readAll(victim), "precious");
}

TEST(OutputFile, RefusesDirectoriesAndMissingDirectories) {
  TempDir dir = makeDir();
  ASSERT_EQ(::mkdir(dir.file("sub").c_str(), 0700), 0);
  auto onto_dir = OutputFile::create(dir.file("sub"), true);
  ASSERT_FALSE(onto_dir.ok());
  EXPECT_NE(onto_dir.error().message.find("not a regular file"), std::string::npos);
  auto missing = OutputFile::create(dir.file("nope/x.psnap"), false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open output directory"), std::string::npos);
  EXPECT_EQ(missing.error().message.find("No such"), std::string::npos); // lowercase
}

TEST(OutputFile, UnwritableDirectoryFailsBeforeAnythingIsWritten) {
  // sysfs refuses new files even to root, which a chmod'ed directory would not.
  auto file = OutputFile::create("/sys/procsnap-test.psnap", false);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, ErrorCode::PermissionDenied);
  EXPECT_EQ(file.error().message, "cannot create a file in /sys: permission denied");
}

TEST(OutputFile, NoSpaceMessageNamesTheFile) {
  TempDir dir = makeDir();
  auto file = OutputFile::create(dir.file("f.psnap"), false);
  ASSERT_TRUE(file.ok());
  const Error described =
      (*file)->describeWriteError(Error::make(ErrorCode::NoSpace, "write: No space left"));
  EXPECT_EQ(described.code, ErrorCode::NoSpace);
  EXPECT_EQ(described.message, "no space left on device while writing " + dir.file("f.psnap"));
}

TEST(OutputFile, PositionalWritesLeaveHoles) {
  TempDir dir = makeDir();
  const std::string path = dir.file("sparse.core");
  auto file = OutputFile::create(path, false);
  ASSERT_TRUE(file.ok()) << file.error().message;
  constexpr uint64_t kSize = 8 << 20; // far more than the two pages written
  ASSERT_TRUE((*file)->resize(kSize).ok());
  const std::vector<uint8_t> page(4096, 0xab);
  ASSERT_TRUE((*file)->write(0, page).ok());
  ASSERT_TRUE((*file)->write(kSize - page.size(), page).ok());
  EXPECT_LT((*file)->allocatedBytes(), kSize / 4);
  ASSERT_TRUE((*file)->commit().ok());
  EXPECT_EQ((*file)->fd(), -1);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
  const std::string text = readAll(path);
  ASSERT_EQ(text.size(), kSize);
  EXPECT_EQ(static_cast<uint8_t>(text[0]), 0xab);
  EXPECT_EQ(text[page.size()], '\0');
  EXPECT_EQ(static_cast<uint8_t>(text[kSize - 1]), 0xab);
}

TEST(OutputFile, WriteErrorsFromErrno) {
  const Error full = describeWriteError(ENOSPC, "x.core");
  EXPECT_EQ(full.code, ErrorCode::NoSpace);
  EXPECT_EQ(full.message, "no space left on device while writing x.core");
  EXPECT_EQ(describeWriteError(EIO, "standard output").message,
            "cannot write standard output: input/output error");
}

} // namespace
} // namespace procsnap

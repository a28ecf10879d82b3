// The writer on pipes and full disks: append-only output must not depend on the fd kind.
#include "common/archive/reader.h"
#include "common/archive/writer.h"
#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <thread>
#include <unistd.h>

namespace procsnap {
namespace {

using test::TempDir;

// Writes the synthetic archive (with a few big chunks, so pipe writes come out short) to fd.
Result<void> writeArchiveTo(int fd) {
  const SnapshotMetadata metadata = test::syntheticMetadata();
  ArchiveWriter writer(fd);
  ChunkCompressor compressor(1);
  PROCSNAP_TRY(writer.writeHeader());
  PROCSNAP_TRY(writer.writeMetadata(metadata));
  ModuleSketch sketch;
  sketch.record.path = "/synthetic/bin";
  sketch.file_size = 300000;
  sketch.pieces.push_back({0, std::vector<std::byte>(200000, std::byte{0x5a})});
  PROCSNAP_TRY(writer.writeModule(sketch));
  for (const auto& chunk : test::syntheticChunks(metadata)) {
    auto compressed = compressor.compress(chunk.address, chunk.bytes);
    PROCSNAP_TRY(compressed);
    PROCSNAP_TRY(writer.writeChunk(*compressed));
  }
  std::vector<std::byte> big(kChunkSize);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = test::syntheticByte(i * 7);
  auto compressed = compressor.compress(0x900000000, big);
  PROCSNAP_TRY(compressed);
  PROCSNAP_TRY(writer.writeChunk(*compressed));
  PROCSNAP_TRY(writer.writeStats(metadata.stats));
  return writer.finish();
}

// Drains a pipe into a string on a thread, with a bounded wait for each read.
class PipeDrain final {
public:
  explicit PipeDrain(int fd)
      : thread_([this, fd] {
          char buffer[65536];
          for (;;) {
            pollfd pfd{fd, POLLIN, 0};
            if (::poll(&pfd, 1, 20000) <= 0) // 20 s without data: give up, the test fails
              return;
            const ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n <= 0)
              return;
            bytes_.append(buffer, static_cast<size_t>(n));
          }
        }) {}
  ~PipeDrain() {
    if (thread_.joinable())
      thread_.join();
  }
  PipeDrain(const PipeDrain&) = delete;
  PipeDrain& operator=(const PipeDrain&) = delete;
  std::string take() {
    thread_.join();
    return std::move(bytes_);
  }

private:
  std::string bytes_;
  std::thread thread_;
};

std::string asString(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void expectPipeGivesSameFile(bool non_blocking) {
  auto dir = TempDir::create("archive-pipe");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("file.psnap");
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(file, 0);
  auto written = writeArchiveTo(file);
  ASSERT_TRUE(written.ok()) << written.error().message;
  ::close(file);
  auto expected = test::readFileBytes(path);
  ASSERT_TRUE(expected.ok());

  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096); // a small pipe makes writes come out short
  if (non_blocking)
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  std::string piped;
  {
    PipeDrain drain(fds[0]);
    auto result = writeArchiveTo(fds[1]);
    ::close(fds[1]);
    EXPECT_TRUE(result.ok()) << result.error().message;
    piped = drain.take();
  }
  ::close(fds[0]);
  ASSERT_EQ(piped.size(), expected->size());
  EXPECT_TRUE(piped == asString(*expected));

  // And what came through the pipe is a complete archive.
  const std::string piped_path = dir->file("piped.psnap");
  ASSERT_TRUE(test::writeFileBytes(piped_path, std::as_bytes(std::span(piped))).ok());
  auto reader = ArchiveReader::open(piped_path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_TRUE((*reader)->verify().ok());
}

TEST(ArchiveWriterIo, PipeGivesTheSameBytesAsAFile) {
  expectPipeGivesSameFile(false);
}

TEST(ArchiveWriterIo, NonBlockingPipeGivesTheSameBytesAsAFile) {
  expectPipeGivesSameFile(true);
}

TEST(ArchiveWriterIo, FullDiskIsNoSpace) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ArchiveWriter writer(fd);
  auto result = writer.writeHeader();
  ::close(fd);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::NoSpace);
  EXPECT_NE(result.error().message.find("no space left on device"), std::string::npos)
      << result.error().message;
  // A failed writer refuses to go on rather than write a hole.
  auto next = writer.writeMetadata(SnapshotMetadata{});
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.error().message.find("earlier write failed"), std::string::npos);
}

TEST(ArchiveWriterIo, ClosedPipeIsAnIoError) {
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &previous), 0);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[0]);
  ArchiveWriter writer(fds[1]);
  auto result = writer.writeHeader();
  ::close(fds[1]);
  ::sigaction(SIGPIPE, &previous, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::Io);
  EXPECT_NE(result.error().message.find("broken pipe"), std::string::npos);
}

} // namespace
} // namespace procsnap

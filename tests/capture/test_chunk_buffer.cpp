#include "capture/chunk_buffer.h"
#include "capture/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <vector>

namespace procsnap {
namespace {

CopiedChunk chunkOf(uint64_t address, size_t size, unsigned char fill) {
  CopiedChunk chunk;
  chunk.address = address;
  chunk.bytes.assign(size, std::byte{fill});
  // A recognisable first byte per chunk.
  chunk.bytes[0] = std::byte{static_cast<unsigned char>(address >> 12)};
  return chunk;
}

TEST(ChunkBuffer, KeepsRawBytesUntilTheBudgetThenCompresses) {
  ChunkBuffer buffer(/*budget_bytes=*/8192, /*level=*/1);
  ASSERT_TRUE(buffer.add(chunkOf(0x3000, 4096, 0xaa)).ok());
  ASSERT_TRUE(buffer.add(chunkOf(0x1000, 4096, 0xbb)).ok());
  EXPECT_FALSE(buffer.compressedWhileFrozen());
  ASSERT_TRUE(buffer.add(chunkOf(0x5000, 8192, 0xcc)).ok()); // over budget: compressed now
  EXPECT_TRUE(buffer.compressedWhileFrozen());
  EXPECT_EQ(buffer.chunksCompressedWhileFrozen(), 1u);
  EXPECT_EQ(buffer.rawBytes(), 8192u);
  EXPECT_EQ(buffer.storedBytes(), 16384u);

  buffer.sortByAddress();
  const auto& entries = buffer.entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].address, 0x1000u);
  EXPECT_EQ(entries[1].address, 0x3000u);
  EXPECT_EQ(entries[2].address, 0x5000u);
  EXPECT_TRUE(entries[2].raw.empty());
  ASSERT_TRUE(entries[2].compressed.has_value());
  EXPECT_EQ(entries[2].compressed->size, 8192u);
  EXPECT_EQ(entries[2].compressed->address, 0x5000u);

  // Reads work from raw and from inline-compressed chunks, and only inside one chunk.
  std::vector<std::byte> out(4);
  ASSERT_TRUE(buffer.read(0x1000, out));
  EXPECT_EQ(out[0], std::byte{0x01});
  EXPECT_EQ(out[1], std::byte{0xbb});
  ASSERT_TRUE(buffer.read(0x5000 + 8188, out));
  EXPECT_EQ(out[3], std::byte{0xcc});
  ASSERT_TRUE(buffer.read(0x5000, out));
  EXPECT_EQ(out[0], std::byte{0x05});
  EXPECT_FALSE(buffer.read(0x2000, out));        // between chunks
  EXPECT_FALSE(buffer.read(0x1000 + 4094, out)); // runs past the end of a chunk
  EXPECT_FALSE(buffer.read(0x5000 + 8192, out)); // just after the last one
}

TEST(ChunkBuffer, RejectsOversizedChunks) {
  ChunkBuffer buffer(1u << 30, 1);
  CopiedChunk chunk;
  chunk.address = 0x1000;
  chunk.bytes.resize(kChunkSize + 4096);
  EXPECT_FALSE(buffer.add(std::move(chunk)).ok());
  EXPECT_TRUE(buffer.add(CopiedChunk{0x1000, {}}).ok()); // empty: ignored
  EXPECT_TRUE(buffer.entries().empty());
}

TEST(ThreadPool, RunsEveryItemOnceOnValidWorkers) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3u);
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}}) {
    std::vector<std::atomic<int>> seen(count);
    std::atomic<bool> bad_worker{false};
    pool.forEach(count, [&](unsigned worker, size_t item) {
      if (worker >= 3)
        bad_worker = true;
      ++seen[item];
    });
    EXPECT_FALSE(bad_worker);
    for (size_t i = 0; i < count; ++i)
      EXPECT_EQ(seen[i].load(), 1) << "item " << i;
  }
  EXPECT_GE(defaultJobCount(), 1u);
}

} // namespace
} // namespace procsnap

// Helpers shared by the procsnap-capture end-to-end tests (test_capture_*.cpp): run the real
// binary, read target memory back out of an archive, wait (bounded) for a target to be
// running and untraced again.
#pragma once

#include "common/archive/reader.h"
#include "tests/support/run_command.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <vector>

extern char** environ;

namespace procsnap::test {

// A capture of a sample takes well under a second; anything near this is a hang.
inline constexpr int kCaptureTimeoutSeconds = 60;

// The binary under test: $PROCSNAP_CAPTURE_BIN when set (e.g. a sanitizer build), else the
// one this test was built with.
inline std::string captureBinary() {
  const char* from_environment = std::getenv("PROCSNAP_CAPTURE_BIN");
  return from_environment != nullptr && from_environment[0] != '\0' ? from_environment
                                                                    : PROCSNAP_CAPTURE_BIN;
}

inline CommandResult runCapture(std::vector<std::string> args) {
  args.insert(args.begin(), captureBinary());
  return runCommand(args, kCaptureTimeoutSeconds);
}

// Bytes [address, address + length) from the archive's chunks, or nullopt when some byte is
// not stored.
inline std::optional<std::vector<std::byte>> readMemory(const ArchiveReader& reader,
                                                        uint64_t address, size_t length) {
  std::vector<std::byte> out(length);
  size_t done = 0;
  std::vector<std::byte> chunk_bytes;
  while (done < length) {
    const ChunkInfo* chunk = reader.findChunk(address + done);
    if (!chunk)
      return std::nullopt;
    chunk_bytes.resize(chunk->size);
    if (!reader.readChunk(*chunk, chunk_bytes).ok())
      return std::nullopt;
    const uint64_t offset = address + done - chunk->address;
    const size_t n = std::min<size_t>(length - done, chunk->size - offset);
    std::memcpy(out.data() + done, chunk_bytes.data() + offset, n);
    done += n;
  }
  return out;
}

inline std::optional<std::string> readString(const ArchiveReader& reader, uint64_t address,
                                             size_t length) {
  auto bytes = readMemory(reader, address, length);
  if (!bytes)
    return std::nullopt;
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

// True when needle occurs in any decompressed chunk.
inline bool anyChunkContains(const ArchiveReader& reader, std::string_view needle) {
  std::vector<std::byte> bytes;
  for (const ChunkInfo& chunk : reader.chunks()) {
    bytes.resize(chunk.size);
    if (!reader.readChunk(chunk, bytes).ok())
      continue;
    std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (text.find(needle) != std::string_view::npos)
      return true;
  }
  return false;
}

// The checks every capture mode must pass on an archive of the sample: the values it reports
// at its addresses (globals, heap, the memfd, file and MADV_DONTFORK / MADV_WIPEONFORK
// regions, each thread's stack marker), every thread with registers, not partial, and the
// MADV_DONTDUMP region left out (the secret alone is also a literal in .rodata; only the
// region holds it repeated with newlines).
inline void expectSampleTruth(const ArchiveReader& reader, const nlohmann::json& truth) {
  auto counter = readMemory(reader, addressOf(truth["data_counter"]["addr"]), 8);
  ASSERT_TRUE(counter.has_value());
  uint64_t value = 0;
  std::memcpy(&value, counter->data(), 8);
  EXPECT_EQ(value, truth["data_counter"]["value"].get<uint64_t>());
  for (const char* key : {"data_message", "rodata_string", "heap_small", "heap_large", "memfd",
                          "file_mapping", "dontfork", "wipeonfork"}) {
    const std::string expected = truth[key]["value"].get<std::string>();
    EXPECT_EQ(readString(reader, addressOf(truth[key]["addr"]), expected.size()), expected) << key;
  }
  for (const nlohmann::json& thread : truth["threads"]) {
    const std::string marker = thread["stack_marker"].get<std::string>();
    EXPECT_EQ(readString(reader, addressOf(thread["stack_marker_addr"]), marker.size()), marker)
        << thread["name"];
  }
  EXPECT_FALSE(reader.metadata().partial);
  EXPECT_EQ(reader.metadata().threads.size(), truth["threads"].size() + 1);
  const std::string secret = truth["dontdump"]["secret"].get<std::string>();
  EXPECT_FALSE(anyChunkContains(reader, secret + "\n" + secret));
}

// Waits (at most timeout) until the sample is neither stopped nor traced.
inline bool waitRunningUntraced(const SampleProcess& sample, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string state = sample.statusField("State");
    const std::string tracer = sample.statusField("TracerPid");
    if (!state.empty() && state[0] != 't' && state[0] != 'T' && tracer == "0")
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Starts procsnap-capture without waiting, stdout and stderr to /dev/null, so a test can
// signal it mid-capture. Returns the pid, or -1.
inline pid_t spawnCapture(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {captureBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawnCommand(argv);
}

// Waits (bounded) for a spawned child; returns its wait status, or -1 after SIGKILL on
// timeout.
inline int waitChild(pid_t pid, std::chrono::milliseconds timeout) {
  return waitCommand(pid, timeout);
}

} // namespace procsnap::test

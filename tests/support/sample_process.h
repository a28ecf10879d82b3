// Starts a sample target (samples/sample_target.cpp), reads the line of truth it prints about
// its own memory, and kills it when the object goes away. The truth schema is in
// samples/README.md.
#pragma once

#include "common/util/result.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace procsnap::test {

enum class SampleVariant { Pie, NoPie };

// Absolute path of the built sample (PROCSNAP_SAMPLE_PIE / PROCSNAP_SAMPLE_NOPIE).
std::string samplePath(SampleVariant variant);

class SampleProcess final {
public:
  // Starts the sample with `--exit-after 300` and then args (a later --exit-after wins), and
  // waits (at most 10 s, plus 30 ms per MiB of --resident-mb) for its truth line. The sample gets
  // SIGTERM if the thread that started it exits, so start samples from the test's own thread.
  static Result<std::unique_ptr<SampleProcess>> start(SampleVariant variant,
                                                      std::vector<std::string> args = {});
  ~SampleProcess(); // SIGKILL, reap, and remove the sample's temporary file
  SampleProcess(const SampleProcess&) = delete;
  SampleProcess& operator=(const SampleProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The latest truth line (updated by mutate()).
  const nlohmann::json& truth() const { return truth_; }

  // Sends SIGUSR1 (mutate known globals, grow the heap) and waits (at most 10 s) for the next
  // truth line, which it also stores as truth().
  Result<nlohmann::json> mutate();
  // True while the process exists and is not a zombie.
  bool alive() const;
  // The value of a /proc/PID/status field ("State", "TracerPid", ...), trimmed; "" when the
  // field or the process is missing.
  std::string statusField(const std::string& key) const;

private:
  SampleProcess() = default;
  Result<nlohmann::json> readTruthLine(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;
  nlohmann::json truth_;
};

// Parses "0x1234" or a JSON number into an address; 0 when it is neither.
uint64_t addressOf(const nlohmann::json& value);

} // namespace procsnap::test

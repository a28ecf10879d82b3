// Starts a sample target (samples/sample_target.cpp), reads the line of truth it prints about
// its own memory, and kills it when the object goes away.
#pragma once

#include "common/result.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace procsnap::test {

enum class SampleVariant { Pie, NoPie };

std::string samplePath(SampleVariant variant);

class SampleProcess {
public:
  // Starts the sample with args and waits (bounded) for its truth line.
  static Result<std::unique_ptr<SampleProcess>> start(SampleVariant variant,
                                                      std::vector<std::string> args = {});
  ~SampleProcess(); // SIGKILL and reap
  SampleProcess(const SampleProcess&) = delete;
  SampleProcess& operator=(const SampleProcess&) = delete;

  pid_t pid() const { return pid_; }
  const nlohmann::json& truth() const { return truth_; }

  // Sends SIGUSR1 (mutate known globals, grow the heap) and waits for the next truth line.
  Result<nlohmann::json> mutate();
  // True while the process exists and is not a zombie.
  bool alive() const;
  // /proc/PID/status fields, for checking State and TracerPid after a capture.
  std::string statusField(const std::string& key) const;

private:
  SampleProcess() = default;
  Result<nlohmann::json> readTruthLine();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;
  nlohmann::json truth_;
};

// Parses "0x1234" or a JSON number into an address.
uint64_t addressOf(const nlohmann::json& value);

} // namespace procsnap::test

#include "tests/support/sample_process.h"

#include "common/proc/files.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap::test {

namespace {

// The truth line comes after the sample filled a few MiB: generous for a loaded 2-core machine,
// still bounded.
constexpr auto kTruthTimeout = std::chrono::milliseconds(10000);
// --resident-mb pages are written before the first truth line: 1 GiB took 5 s of CPU and 10 s
// of wall time on a busy 2-core machine, so allow 30 ms per MiB on top.
constexpr auto kTruthTimeoutPerResidentMb = std::chrono::milliseconds(30);
// A truth line is a few KiB, plus about 130 bytes per mutation; anything this long is garbage.
constexpr size_t kMaxTruthLineBytes = 1 << 20;
// A safety net against leaked samples, shorter than the sample's own default.
constexpr const char* kSampleExitAfterSeconds = "300";
// Only files the sample itself creates are removed by the destructor.
constexpr const char* kSampleTempFilePrefix = "procsnap-sample-";

std::string errnoText() {
  return std::strerror(errno);
}

std::chrono::milliseconds firstTruthTimeout(const std::vector<std::string>& args) {
  uint64_t resident_mb = 0;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--resident-mb")
      resident_mb = std::strtoull(args[i + 1].c_str(), nullptr, 10); // the sample checks it
  resident_mb = std::min<uint64_t>(resident_mb, 1 << 20);            // the sample's own limit
  return kTruthTimeout + kTruthTimeoutPerResidentMb * static_cast<int64_t>(resident_mb);
}

} // namespace

std::string samplePath(SampleVariant variant) {
  return variant == SampleVariant::Pie ? PROCSNAP_SAMPLE_PIE : PROCSNAP_SAMPLE_NOPIE;
}

Result<std::unique_ptr<SampleProcess>> SampleProcess::start(SampleVariant variant,
                                                            std::vector<std::string> args) {
  std::string path = samplePath(variant);
  std::vector<std::string> argv_strings = {path, "--exit-after", kSampleExitAfterSeconds};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings)
    argv.push_back(arg.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Error::make(ErrorCode::Io, "cannot create a pipe: " + errnoText());
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int saved = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Error::make(ErrorCode::Generic, std::string("cannot fork: ") + std::strerror(saved));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(127);
    if (dup2(pipe_fds[1], STDOUT_FILENO) < 0)
      _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::unique_ptr<SampleProcess> process(new SampleProcess());
  process->pid_ = pid;
  process->stdout_fd_ = pipe_fds[0];
  Result<nlohmann::json> truth = process->readTruthLine(firstTruthTimeout(args));
  if (!truth.ok())
    return Error::make(truth.error().code, path + ": " + truth.error().message);
  process->truth_ = std::move(truth.value());
  return process;
}

SampleProcess::~SampleProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0)
    close(stdout_fd_);
  // SIGKILL gave the sample no chance to remove its file: do it for it.
  const nlohmann::json* file_mapping =
      truth_.is_object() && truth_.contains("file_mapping") ? &truth_["file_mapping"] : nullptr;
  if (file_mapping != nullptr && file_mapping->is_object() && file_mapping->contains("path") &&
      (*file_mapping)["path"].is_string()) {
    std::string path = (*file_mapping)["path"].get<std::string>();
    std::string name = path.substr(path.rfind('/') + 1);
    if (name.rfind(kSampleTempFilePrefix, 0) == 0)
      unlink(path.c_str()); // best effort: a missing file is fine
  }
}

Result<nlohmann::json> SampleProcess::readTruthLine(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t newline = pending_.find('\n');
    if (newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_object())
        return Error::make(ErrorCode::Malformed,
                           "truth line is not a json object: " + line.substr(0, 200));
      return parsed;
    }
    if (pending_.size() > kMaxTruthLineBytes)
      return Error::make(ErrorCode::Malformed, "truth line longer than 1 MiB");
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0)
      return Error::make(ErrorCode::Interrupted,
                         "no truth line within " + std::to_string(timeout.count()) + " ms");
    pollfd watched{stdout_fd_, POLLIN, 0};
    int ready = poll(&watched, 1, static_cast<int>(remaining.count()));
    if (ready < 0 && errno != EINTR)
      return Error::make(ErrorCode::Io, "poll failed: " + errnoText());
    if (ready <= 0)
      continue;
    char buffer[4096];
    ssize_t n = read(stdout_fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return Error::make(ErrorCode::Io, "cannot read the sample's stdout: " + errnoText());
    if (n == 0)
      return Error::make(ErrorCode::ProcessGone, "sample exited before printing its truth line");
    pending_.append(buffer, static_cast<size_t>(n));
  }
}

Result<nlohmann::json> SampleProcess::mutate() {
  if (kill(pid_, SIGUSR1) != 0)
    return Error::make(ErrorCode::ProcessGone, "cannot signal the sample: " + errnoText());
  Result<nlohmann::json> truth = readTruthLine(kTruthTimeout);
  if (!truth.ok())
    return truth;
  truth_ = truth.value();
  return truth;
}

bool SampleProcess::alive() const {
  std::string state = statusField("State");
  return !state.empty() && state[0] != 'Z' && state[0] != 'X';
}

std::string SampleProcess::statusField(const std::string& key) const {
  // Not an ifstream: it throws when read() fails with ESRCH as the process ends.
  const Result<std::string> text = readProcFile(procPath(pid_, "status"));
  if (!text.ok())
    return "";
  std::istringstream status(*text);
  std::string line;
  const std::string prefix = key + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) != 0)
      continue;
    size_t begin = line.find_first_not_of(" \t", prefix.size());
    if (begin == std::string::npos)
      return "";
    size_t end = line.find_last_not_of(" \t");
    return line.substr(begin, end - begin + 1);
  }
  return "";
}

uint64_t addressOf(const nlohmann::json& value) {
  if (value.is_number_unsigned())
    return value.get<uint64_t>();
  if (value.is_number_integer())
    return static_cast<uint64_t>(value.get<int64_t>());
  if (!value.is_string())
    return 0;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
    return 0;
  errno = 0;
  char* end = nullptr;
  unsigned long long address = std::strtoull(text.c_str() + 2, &end, 16);
  if (errno != 0 || end == nullptr || *end != '\0')
    return 0;
  return address;
}

} // namespace procsnap::test

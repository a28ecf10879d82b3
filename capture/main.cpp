// procsnap-capture: parses the command line, runs one capture, reports. Only this file
// decides what is fatal and which exit code it gets.
#include "capture/capture_options.h"
#include "capture/capture_report.h"
#include "capture/capture_session.h"
#include "capture/cow_child.h"
#include "capture/exit_codes.h"
#include "capture/frozen_process.h"
#include "capture/progress.h"
#include "capture/signal_guard.h"
#include "common/util/terminal_text.h"
#include "common/util/version.h"

#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

// On a fatal or terminating signal: the copy-on-write fork dies first (it must never run the
// target's code), then every frozen thread is detached. Both are async-signal-safe.
void emergencyRelease() noexcept {
  procsnap::emergencyKillCowChild();
  procsnap::emergencyThawAll();
}

constexpr const char* kProgram = "procsnap-capture";

void printLine(FILE* stream, const std::string& text) {
  std::fputs(text.c_str(), stream);
  if (text.empty() || text.back() != '\n')
    std::fputc('\n', stream);
  std::fflush(stream);
}

// Messages quote paths, comm and /proc text: escaped so they stay one line and inert.
void printError(const std::string& message) {
  printLine(stderr, std::string(kProgram) + ": error: " + procsnap::escapeForTerminal(message));
}

} // namespace

int main(int argc, char** argv) {
  using namespace procsnap;
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parseCaptureOptions(args);
  if (!parsed) {
    printError(parsed.error().message);
    std::fprintf(stderr, "Try '%s --help' for more information.\n", kProgram);
    return toInt(ExitCode::Usage);
  }
  const CaptureOptions& options = *parsed;
  if (options.help) {
    printLine(stdout, captureUsage(kProgram));
    return toInt(ExitCode::Success);
  }
  if (options.version) {
    printLine(stdout, std::string(kProgram) + " " + std::string(toolVersion()));
    return toInt(ExitCode::Success);
  }

  // With -o - standard output carries the archive, so the JSON report goes to stderr.
  FILE* json_stream = options.toStdout() ? stderr : stdout;

  SignalGuard::install(&emergencyRelease);
  Progress progress(!options.quiet, STDERR_FILENO);
  auto outcome = runCapture(options, progress);
  progress.clear();
  SignalGuard::uninstall();

  if (!outcome) {
    const Error& error = outcome.error();
    printError(error.message);
    if (options.json)
      printLine(json_stream, formatErrorJson(error, toInt(ExitCode::Error)));
    return toInt(ExitCode::Error);
  }
  if (outcome->partial)
    printLine(stderr, std::string(kProgram) + ": warning: partial capture: " +
                          escapeForTerminal(outcome->partial_reason));
  if (options.stats)
    printLine(stderr, formatStatsText(*outcome));
  if (options.json)
    printLine(json_stream, formatOutcomeJson(*outcome));
  return toInt(outcome->exit_code);
}

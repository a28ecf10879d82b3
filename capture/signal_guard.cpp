#include "capture/signal_guard.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <limits.h>
#include <unistd.h>

namespace procsnap {
namespace {

constexpr int kGuardedSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Read by the handler: only plain static storage and sig_atomic_t flags.
char g_temporary_path[PATH_MAX];
volatile sig_atomic_t g_temporary_path_set = 0;
SignalGuard::EmergencyAction volatile g_emergency = nullptr;
// Nesting depth of SignalGuard::Deferral, and the signal that arrived meanwhile.
volatile sig_atomic_t g_deferral_depth = 0;
volatile sig_atomic_t g_deferred_signal = 0;

void onFatalSignal(int signal_number) {
  if (g_deferral_depth > 0) {
    if (g_deferred_signal == 0)
      g_deferred_signal = signal_number;
    return;
  }
  const int saved_errno = errno;
  if (SignalGuard::EmergencyAction action = g_emergency)
    action();
  if (g_temporary_path_set)
    (void)::unlink(g_temporary_path); // deliberately ignored: we are dying anyway
  // Die of the same signal so the parent sees it.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(signal_number, &default_action, nullptr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, signal_number);
  ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  ::raise(signal_number);
  errno = saved_errno; // not reached unless the signal is blocked elsewhere
}

} // namespace

void SignalGuard::install(EmergencyAction emergency) {
  g_emergency = emergency;
  struct sigaction action {};
  action.sa_handler = onFatalSignal;
  sigemptyset(&action.sa_mask);
  // Block the other guarded signals while one is handled: one cleanup at a time.
  for (int sig : kGuardedSignals)
    sigaddset(&action.sa_mask, sig);
  for (int sig : kGuardedSignals)
    ::sigaction(sig, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

void SignalGuard::uninstall() {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig : kGuardedSignals)
    ::sigaction(sig, &default_action, nullptr);
  g_emergency = nullptr;
}

void SignalGuard::setTemporaryPath(const char* path) {
  g_temporary_path_set = 0;
  const size_t length = std::strlen(path);
  if (length >= sizeof g_temporary_path)
    return;
  std::memcpy(g_temporary_path, path, length + 1);
  g_temporary_path_set = 1;
}

void SignalGuard::clearTemporaryPath() {
  g_temporary_path_set = 0;
}

SignalGuard::Deferral::Deferral() {
  g_deferral_depth = g_deferral_depth + 1;
}

SignalGuard::Deferral::~Deferral() {
  g_deferral_depth = g_deferral_depth - 1;
  if (g_deferral_depth == 0 && g_deferred_signal != 0) {
    const int signal_number = g_deferred_signal;
    g_deferred_signal = 0;
    onFatalSignal(signal_number); // the course the signal would have taken
  }
}

int SignalGuard::deferredSignal() {
  return g_deferred_signal;
}

} // namespace procsnap

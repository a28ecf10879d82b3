// Makes SIGINT, SIGTERM and SIGHUP safe during a capture: the handler thaws the target
// (through the emergency callback, which must be async-signal-safe), removes the temporary
// output file, then re-raises the signal with its default action so the exit status still
// says what killed us. SIGPIPE is ignored so a closed pipe becomes a write error (EPIPE).
#pragma once

namespace procsnap {

class SignalGuard final {
public:
  using EmergencyAction = void (*)();

  // Installs the handlers. emergency may be null.
  static void install(EmergencyAction emergency);
  // Restores the default actions.
  static void uninstall();

  // The temporary file the handler unlinks (copied into a static buffer; paths longer than
  // the buffer are not registered). Pass the path as it can be used from the cwd.
  static void setTemporaryPath(const char* path);
  static void clearTemporaryPath();

  // While a Deferral lives, a guarded signal is only recorded (deferredSignal()), so that
  // work which must not be cut short can finish: a thread running injected registers must get
  // its own back, and a copy-on-write fork must be reaped. Code in that scope polls
  // deferredSignal() and unwinds; when the outermost Deferral ends, a recorded signal takes
  // its normal course (emergency action, unlink, re-raise). Only the capturing thread may
  // create one (it also blocks the signals' normal path for the whole process).
  class Deferral final {
  public:
    Deferral();
    ~Deferral();
    Deferral(const Deferral&) = delete;
    Deferral& operator=(const Deferral&) = delete;
  };
  // The signal recorded during a Deferral, or 0.
  static int deferredSignal();

  SignalGuard() = delete;
};

} // namespace procsnap

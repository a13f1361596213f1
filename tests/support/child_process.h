#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace helpline::testing {

// A program a test starts, kills (-9 or TERM) and waits for; its output goes
// to a file so a test can show it when something fails.
class ChildProcess {
 public:
  ChildProcess(std::string program, std::vector<std::string> args, std::string output_file);
  ~ChildProcess();

  bool Start();
  bool running();
  // Sends the signal and waits; returns the exit status as waitpid gives it.
  int Signal(int signal);
  // Sends the signal without waiting (SIGSTOP, SIGCONT).
  void Send(int signal);
  // Waits at most `seconds` for the output file to contain `text`.
  bool WaitForOutput(const std::string& text, double seconds);
  std::string Output() const;
  pid_t pid() const { return pid_; }

 private:
  std::string program_;
  std::vector<std::string> args_;
  std::string output_file_;
  pid_t pid_ = -1;
};

}  // namespace helpline::testing

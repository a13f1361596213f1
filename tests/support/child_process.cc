#include "tests/support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"

namespace helpline::testing {

ChildProcess::ChildProcess(std::string program, std::vector<std::string> args,
                           std::string output_file)
    : program_(std::move(program)), args_(std::move(args)), output_file_(std::move(output_file)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Signal(SIGKILL);
}

bool ChildProcess::Start() {
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = open(output_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program_.c_str()));
    for (std::string& arg : args_) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execvp(program_.c_str(), argv.data());
    _exit(127);
  }
  return true;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::Signal(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void ChildProcess::Send(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

std::string ChildProcess::Output() const {
  std::ifstream file(output_file_);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

bool ChildProcess::WaitForOutput(const std::string& text, double seconds) {
  absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < deadline) {
    if (Output().find(text) != std::string::npos) return true;
    if (!running()) return Output().find(text) != std::string::npos;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

}  // namespace helpline::testing

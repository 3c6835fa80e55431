// Helpers shared by the tests that drive the cpudiff binary: running a
// command and a fixture with a fresh scratch folder per test.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace cpudiff::test {

struct Exec {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `cmd` with /bin/sh and collects its output and exit code (128 + the
// signal when it was killed).
inline Exec Shell(const std::string& cmd) {
  Exec e;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return e;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) e.out.append(buf.data(), n);
  int status = pclose(p);
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return e;
}

// The cpudiff binary under test with these arguments.
inline Exec RunCpudiff(const std::string& args) {
  return Shell(std::string(CPUDIFF_BINARY) + " " + args);
}

// A fixture with an empty folder of its own per test, removed afterwards.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("cpudiff_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  std::filesystem::path dir_;
};

}  // namespace cpudiff::test

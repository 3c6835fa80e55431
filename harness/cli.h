// The cpudiff command line.
#pragma once

namespace cpudiff {

// Parses the command line and runs the command; returns the exit code.
int CliMain(int argc, char** argv);

}  // namespace cpudiff

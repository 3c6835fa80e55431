#include "harness/cli.h"

int main(int argc, char** argv) { return cpudiff::CliMain(argc, argv); }

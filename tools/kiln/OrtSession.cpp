//===- OrtSession.cpp - onnx artifacts run in ONNX Runtime, for kiln run/eval -===//
#include "OrtSession.h"

#include "kiln/Support/Error.h"

#include <yaml-cpp/yaml.h>

#include <csignal>
#include <filesystem>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace fs = std::filesystem;

namespace kiln {

bool isOnnxArtifact(const std::string &dir) {
  fs::path manifest = fs::path(dir) / "manifest.yaml";
  if (!fs::is_regular_file(manifest))
    return false;
  try {
    YAML::Node m = YAML::LoadFile(manifest.string());
    return m["target"] && m["target"]["name"] && m["target"]["name"].as<std::string>("") == "onnx";
  } catch (const YAML::Exception &) {
    return false; // the runtime reports what is wrong with it
  }
}

namespace {
std::string runnerPath() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  fs::path runner = exe.parent_path().parent_path() / "lib" / "kiln" / "onnx" / "kiln-ort.js";
  if (ec || !fs::is_regular_file(runner))
    throw Error("kiln: the onnx backend's ONNX Runtime runner is not installed (" + runner.string() + ")");
  return runner.string();
}
} // namespace

OrtSession::OrtSession(const std::string &artifactDir, int threads) : dir_(artifactDir) {
  std::string runner = runnerPath();
  int toChild[2], fromChild[2];
  if (pipe(toChild) != 0 || pipe(fromChild) != 0)
    throw Error("kiln: cannot create pipes for the ONNX Runtime runner");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, toChild[0], 0);
  posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1);
  for (int fd : {toChild[0], toChild[1], fromChild[0], fromChild[1]})
    posix_spawn_file_actions_addclose(&actions, fd);
  std::vector<std::string> argv = {"node", runner, artifactDir, "--serve"};
  if (threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(threads));
  }
  std::vector<char *> cargv;
  for (auto &a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int rc = posix_spawnp(&pid_, "node", &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(toChild[0]);
  close(fromChild[1]);
  if (rc != 0) {
    close(toChild[1]);
    close(fromChild[0]);
    throw Error(artifactDir + ": an onnx artifact runs in ONNX Runtime through node, which is not installed "
                              "(scripts/setup.sh installs it)");
  }
  signal(SIGPIPE, SIG_IGN); // a runner that died shows as a write error, not a kill
  out_ = fdopen(toChild[1], "w");
  in_ = fdopen(fromChild[0], "r");
  std::string ready = readLine();
  long long v = 0, c = 0, p = 0;
  if (std::sscanf(ready.c_str(), "ready %lld %lld %lld", &v, &c, &p) != 3)
    throw Error(artifactDir + ": the ONNX Runtime runner did not start");
  vocab_ = v;
  ctx_ = c;
}

OrtSession::~OrtSession() {
  if (out_)
    fclose(out_);
  if (in_)
    fclose(in_);
  if (pid_ > 0) {
    int status;
    waitpid(pid_, &status, 0);
  }
}

std::string OrtSession::readLine() {
  std::string line;
  int ch;
  while ((ch = fgetc(in_)) != EOF && ch != '\n')
    line += char(ch);
  if (ch == EOF && line.empty())
    // The runner printed its own one-line error to stderr before exiting.
    throw Error(dir_ + ": the ONNX Runtime runner stopped (its error is above)");
  return line;
}

void OrtSession::send(const std::string &line) {
  if (std::fputs((line + "\n").c_str(), out_) < 0 || std::fflush(out_) != 0)
    throw Error(dir_ + ": the ONNX Runtime runner stopped");
}

std::vector<float> OrtSession::append(const std::vector<int32_t> &ids) {
  std::string line = "append ";
  for (size_t i = 0; i < ids.size(); ++i)
    line += (i ? "," : "") + std::to_string(ids[i]);
  send(line);
  std::string reply = readLine();
  if (reply.rfind("error ", 0) == 0)
    throw Error(dir_ + ": ONNX Runtime: " + reply.substr(6));
  long long n = 0;
  if (std::sscanf(reply.c_str(), "logits %lld", &n) != 1 || n != vocab_)
    throw Error(dir_ + ": unexpected reply from the ONNX Runtime runner: " + reply.substr(0, 60));
  std::vector<float> logits(static_cast<size_t>(n));
  if (std::fread(logits.data(), sizeof(float), logits.size(), in_) != logits.size())
    throw Error(dir_ + ": the ONNX Runtime runner stopped mid-reply");
  position_ += int64_t(ids.size());
  return logits;
}

void OrtSession::setAdapter(const std::string &name) {
  if (name.empty() || name.find_first_of(" \n\r\t") != std::string::npos)
    throw Error(dir_ + ": '" + name + "' is not an adapter name");
  send("adapter " + name);
  std::string reply = readLine();
  if (reply.rfind("error ", 0) == 0)
    throw Error(dir_ + ": " + reply.substr(6));
  if (reply != "ok")
    throw Error(dir_ + ": unexpected reply from the ONNX Runtime runner: " + reply.substr(0, 60));
}

void OrtSession::reset() {
  send("reset");
  std::string reply = readLine();
  if (reply != "ok")
    throw Error(dir_ + ": unexpected reply from the ONNX Runtime runner: " + reply.substr(0, 60));
  position_ = 0;
}

} // namespace kiln

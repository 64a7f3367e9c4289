// postgres.h — a real PostgreSQL server in a temporary directory, for tests
// and demos (cllm-trust's PostgreSQL store, several replicas on one database).
//
//   std::string why;
//   auto pg = PostgresServer::Start(dir, &why);      // initdb + postgres, ~1 s
//   if (!pg) GTEST_SKIP() << why;                    // binaries absent: skip loudly
//   pg->CreateDatabase("trust", &why);
//   cllm-trust serve --db pg->Url("trust") …
//   pg->Psql("trust", "UPDATE …", &out);             // what an attacker with DB access does
//
// The server is Debian's (postgresql-15: /usr/lib/postgresql/<v>/bin, or
// $CLLM_POSTGRES_BIN). It listens on 127.0.0.1 at a free port and on a unix
// socket in `dir`, trusts every local connection (user "postgres") and runs
// without fsync: a throwaway cluster, never one that holds anything. initdb
// and postgres refuse to run as root, so as root they run as `nobody`
// (setpriv), with `dir` handed to that user. The destructor stops the
// server (fast shutdown, then SIGKILL) and removes `dir`.
#pragma once

#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"

namespace cllm::testing {

// PostgresBinDir returns the directory holding initdb and postgres, or "".
inline std::filesystem::path PostgresBinDir() {
  namespace fs = std::filesystem;
  auto usable = [](const fs::path& d) {
    return ::access((d / "initdb").c_str(), X_OK) == 0 && ::access((d / "postgres").c_str(), X_OK) == 0;
  };
  if (const char* env = std::getenv("CLLM_POSTGRES_BIN"); env && *env) return usable(env) ? fs::path(env) : fs::path();
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (usable(e.path() / "bin")) found.push_back(e.path() / "bin");
  }
  if (found.empty()) return {};
  // The newest major version ("9.6" < "15": compare numerically).
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    return std::stod(a.parent_path().filename().string()) < std::stod(b.parent_path().filename().string());
  });
  return found.back();
}

// FreeLoopbackPort asks the kernel for a free TCP port on 127.0.0.1.
inline int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class PostgresServer {
 public:
  // Start creates a cluster in `dir` (created; must not exist) and starts
  // it; null with `why` set when it cannot (binaries absent, initdb failed…).
  static std::unique_ptr<PostgresServer> Start(const std::filesystem::path& dir, std::string* why) {
    namespace fs = std::filesystem;
    const fs::path bin = PostgresBinDir();
    if (bin.empty()) {
      *why = "SKIPPED — PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or $CLLM_POSTGRES_BIN; "
             "scripts/install-deps.sh installs `postgresql`)";
      return nullptr;
    }
    std::unique_ptr<PostgresServer> pg(new PostgresServer(dir, bin));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      *why = "cannot create " + dir.string() + ": " + ec.message();
      return nullptr;
    }
    if (::geteuid() == 0) {
      // initdb and postgres refuse root: run them as nobody, in a dir it owns.
      const passwd* pw = ::getpwnam("nobody");
      if (pw == nullptr || ::access("/usr/bin/setpriv", X_OK) != 0) {
        *why = "SKIPPED — running as root without user `nobody` or /usr/bin/setpriv: PostgreSQL cannot start";
        return nullptr;
      }
      if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        *why = "cannot hand " + dir.string() + " to nobody";
        return nullptr;
      }
      pg->as_user_ = {"/usr/bin/setpriv", "--reuid=" + std::to_string(pw->pw_uid),
                      "--regid=" + std::to_string(pw->pw_gid), "--clear-groups"};
    }
    {
      Process initdb(pg->Command({(bin / "initdb").string(), "-D", pg->data_.string(), "-U", "postgres", "-A", "trust",
                                  "-E", "UTF8", "--no-locale", "--no-sync"}),
                     dir / "initdb");
      if (initdb.Wait(std::chrono::seconds(60)) != 0) {
        *why = "initdb failed: " + initdb.err();
        return nullptr;
      }
    }
    for (int attempt = 0; attempt < 3; ++attempt) {  // a free port can be taken before postgres binds it
      pg->port_ = FreeLoopbackPort();
      pg->server_ = std::make_unique<Process>(
          pg->Command({(bin / "postgres").string(), "-D", pg->data_.string(), "-p", std::to_string(pg->port_), "-k",
                       dir.string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                       "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=60", "-c",
                       "shared_buffers=16MB", "-c", "logging_collector=off"}),
          dir / ("postgres-" + std::to_string(attempt)));
      if (pg->WaitReady(std::chrono::seconds(30))) return pg;
      pg->server_->Stop();
    }
    *why = "postgres did not start: " + pg->server_->err();
    return nullptr;
  }

  ~PostgresServer() {
    if (server_ && server_->running()) {
      ::kill(server_->pid(), SIGINT);  // fast shutdown
      if (server_->Wait(std::chrono::seconds(10)) == -1) server_->Stop();
    }
    server_.reset();
    std::error_code ec;
    if (!std::getenv("CLLM_KEEP_E2E")) std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return server_ ? server_->pid() : -1; }
  const std::filesystem::path& bin_dir() const { return bin_; }
  // Url is a libpq URI for `dbname` over TCP; ConnInfo the key=value form
  // over the unix socket. Neither carries a password (trust authentication).
  std::string Url(const std::string& dbname) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
  }
  std::string ConnInfo(const std::string& dbname) const {
    return "host=" + dir_.string() + " port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
  }

  // Psql runs SQL on `dbname` with the psql client (unaligned, tuples only);
  // false with its stderr in `out` on failure.
  bool Psql(const std::string& dbname, const std::string& sql, std::string* out) {
    const std::filesystem::path log = dir_ / ("psql-" + std::to_string(++calls_));
    Process p({(bin_ / "psql").string(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", Url(dbname), "-c", sql},
              log);
    const int rc = p.Wait(std::chrono::seconds(30));
    *out = rc == 0 ? p.out() : p.err();
    while (!out->empty() && out->back() == '\n') out->pop_back();
    return rc == 0;
  }
  bool CreateDatabase(const std::string& name, std::string* why) {
    return Psql("postgres", "CREATE DATABASE \"" + name + "\"", why);
  }

 private:
  PostgresServer(std::filesystem::path dir, std::filesystem::path bin)
      : dir_(std::move(dir)), bin_(std::move(bin)), data_(dir_ / "data") {}

  std::vector<std::string> Command(std::vector<std::string> argv) const {
    std::vector<std::string> out = as_user_;
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
  // WaitReady polls postmaster.pid for the "ready" status postgres writes
  // once it accepts connections.
  bool WaitReady(std::chrono::seconds timeout) {
    const auto deadline = Process::Clock::now() + timeout;
    while (Process::Clock::now() < deadline) {
      if (!server_->running()) return false;
      if (ReadFile(data_ / "postmaster.pid").find("ready") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::filesystem::path dir_, bin_, data_;
  std::vector<std::string> as_user_;  // setpriv prefix when running as root
  std::unique_ptr<Process> server_;
  int port_ = 0;
  int calls_ = 0;
};

}  // namespace cllm::testing

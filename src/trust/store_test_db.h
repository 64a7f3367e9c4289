// store_test_db.h — the database under a store test (test-only): a fresh
// SQLite file, or a fresh database on a real PostgreSQL server started once
// per test process (tests/support/postgres.h), plus raw SQL on it the way
// someone with write access to the database (but not the master key) would
// run it: the sqlite3 library on the file, psql on the server.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#ifdef CLLM_STORE_TEST_POSTGRES
#include "support/postgres.h"
#endif

namespace cllm::trust::testing {

namespace fs = std::filesystem;

// TempDir is a fresh directory, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("cllm_trust_store_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

#ifdef CLLM_STORE_TEST_POSTGRES
// SharedPostgres is one server for the whole test process (started on first
// use, stopped at exit); null with `why` when it cannot run here.
inline cllm::testing::PostgresServer* SharedPostgres(std::string* why) {
  static std::string failure;
  static std::unique_ptr<cllm::testing::PostgresServer> server = [] {
    static TempDir parent;
    return cllm::testing::PostgresServer::Start(parent.path() / "pg", &failure);
  }();
  *why = failure;
  return server.get();
}
#endif

// TestDb is one empty database for a test.
class TestDb {
 public:
  // Create returns a fresh database, or null with `why` (PostgreSQL absent).
  static std::unique_ptr<TestDb> Create(bool postgres, std::string* why) {
    std::unique_ptr<TestDb> db(new TestDb(postgres));
    if (!postgres) {
      db->location_ = (db->dir_.path() / "trust.db").string();
      return db;
    }
#ifdef CLLM_STORE_TEST_POSTGRES
    db->pg_ = SharedPostgres(why);
    if (db->pg_ == nullptr) return nullptr;
    static std::atomic<int> counter{0};
    db->name_ = "t" + std::to_string(counter++);
    if (!db->pg_->CreateDatabase(db->name_, why)) return nullptr;
    db->location_ = db->pg_->Url(db->name_);
    return db;
#else
    *why = "built without PostgreSQL tests";
    return nullptr;
#endif
  }

  bool postgres() const { return postgres_; }
  // location is what Store::Open takes: a file path or a connection string.
  const std::string& location() const { return location_; }
  const fs::path& dir() const { return dir_.path(); }

  // Sql runs statements on the database from outside the store.
  void Sql(const std::string& sql) {
    if (!postgres_) {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
      char* err = nullptr;
      int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
      std::string why = err ? err : "";
      sqlite3_free(err);
      sqlite3_close(db);
      ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << why;
      return;
    }
#ifdef CLLM_STORE_TEST_POSTGRES
    std::string out;
    ASSERT_TRUE(pg_->Psql(name_, sql, &out)) << sql << ": " << out;
#endif
  }
  // Blob is the SQL literal of bytes given in hex, in this engine's syntax.
  std::string Blob(const std::string& hex) const {
    return postgres_ ? "'\\x" + hex + "'::bytea" : "x'" + hex + "'";
  }

 private:
  explicit TestDb(bool postgres) : postgres_(postgres) {}

  bool postgres_;
  TempDir dir_;
  std::string location_;
#ifdef CLLM_STORE_TEST_POSTGRES
  cllm::testing::PostgresServer* pg_ = nullptr;
  std::string name_;
#endif
};

}  // namespace cllm::trust::testing

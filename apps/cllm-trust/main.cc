// cllm-trust: the attestation service, token issuer and key broker.
//
//   cllm-trust init  --state-dir DIR [--db LOCATION]  (once: store, master key, TLS certificate, admin token)
//   cllm-trust serve --state-dir DIR [--db LOCATION] --listen 127.0.0.1:8600 [--ready-file F]
//   cllm-trust upgrade --state-dir DIR               (once: authenticate a schema-1 store's rows)
//
// The store is STATE_DIR/trust.db (SQLite) unless --db names another file or
// a PostgreSQL database ("postgresql://user@host:5432/db" or libpq
// "host=… dbname=…"): several `serve` replicas then share one database, each
// with a copy of the state directory. Secrets in the store are sealed under
// the master key. The state directory holds master.key (unless the key comes from --master-key-file
// or CLLM_TRUST_MASTER_KEY), trust-ca.pem (the service's TLS certificate,
// which clients pin with --trust-ca), audit-key.pem (the public key that
// signs the audit log: `cllm trust audit verify --audit-key`) and
// admin.token (0600). docs/trust.md
// describes the API and the production setup (master key from a KMS/HSM).
// Both commands hold the master key and signing keys: the process never dumps
// core and locks its memory, or refuses to start without
// --allow-unlocked-memory (base/hardening.h).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/common/env_config.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/hardening.h"
#include "base/host_port.h"
#include "base/log.h"
#include "crypto/cert_builder.h"
#include "crypto/keys.h"
#include "crypto/tls.h"
#include "net/server.h"
#include "trust/service.h"

namespace {

using namespace cllm;
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_signal = 0;
constexpr int kScheduleSeconds = 30;  // how often serve applies the fleet-key schedule
void OnSignal(int sig) { g_signal = sig; }

int Fail(const std::string& msg) {
  std::fprintf(stderr, "cllm-trust: error: %s\n", msg.c_str());
  return 2;
}

struct Paths {
  fs::path dir, master_key, ca, admin_token, audit_key;
  std::string db;  // a SQLite file or a PostgreSQL connection string (may hold a password: never printed)
  bool postgres = false;
  Paths(const fs::path& d, const std::string& db_location)
      : dir(d), master_key(d / "master.key"), ca(d / "trust-ca.pem"), admin_token(d / "admin.token"),
        audit_key(d / "audit-key.pem"), db(db_location.empty() ? (d / "trust.db").string() : db_location),
        postgres(trust::IsPostgresStore(db)) {}
};

Result<trust::SecretBox> LoadBox(const Paths& p, const std::string& master_key_file) {
  if (!master_key_file.empty()) return trust::SecretBox::Load(master_key_file);
  if (fs::exists(p.master_key)) return trust::SecretBox::Load(p.master_key);
  return trust::SecretBox::Load("");  // CLLM_TRUST_MASTER_KEY
}

int Init(const Paths& p, const std::string& master_key_file) {
  std::error_code ec;
  fs::create_directories(p.dir, ec);
  if (ec) return Fail("cannot create " + p.dir.string() + ": " + ec.message());
  ::chmod(p.dir.c_str(), 0700);
  if (!p.postgres && fs::exists(p.db)) return Fail(p.db + " exists: this state directory is already initialised");
  if (fs::exists(p.admin_token)) {
    return Fail(p.admin_token.string() + " exists: this state directory is already initialised (a second replica "
                                         "copies it and runs `serve`)");
  }
  if (master_key_file.empty() && std::getenv("CLLM_TRUST_MASTER_KEY") == nullptr) {
    auto st = trust::SecretBox::CreateKeyFile(p.master_key);
    if (!st.ok()) return Fail(st.detail());
    std::printf("master key:   %s (keep it apart from the database in production; docs/trust.md)\n",
                p.master_key.c_str());
  }
  auto box = LoadBox(p, master_key_file);
  if (!box.ok()) return Fail(box.detail());
  trust::StoreOptions options;
  options.mode = trust::StoreOptions::Mode::kCreate;
  auto store = trust::Store::Open(p.db, *box, options);
  if (!store.ok()) return Fail(store.detail());
  const std::string where = (*store)->where();
  const std::string audit_pem = (*store)->audit_key()->ToPem();
  auto wa = WriteFileAtomic(p.audit_key, ByteSpan(reinterpret_cast<const uint8_t*>(audit_pem.data()), audit_pem.size()),
                            0644);
  if (!wa.ok()) return Fail(wa.detail());

  // The service's TLS identity: clients pin this certificate.
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!key.ok()) return Fail(key.detail());
  crypto::CertSpec spec;
  spec.common_name = "cllm-trust";
  spec.not_before = std::chrono::system_clock::now() - std::chrono::minutes(5);
  spec.not_after = spec.not_before + std::chrono::hours(24 * 365 * 5);
  spec.dns_names = {"localhost"};
  auto cert = crypto::IssueCertificate(spec, key->public_key(), *key, nullptr);
  if (!cert.ok()) return Fail(cert.detail());
  SecretBytes pkcs8 = key->ToPkcs8Der();
  auto st = (*store)->PutMeta("tls_key_sealed", HexEncode(box->Seal("tls-key", pkcs8.span())));
  if (st.ok()) st = (*store)->PutMeta("tls_cert_pem", cert->ToPem());
  if (!st.ok()) return Fail(st.detail());
  const std::string pem = cert->ToPem();
  auto w = WriteFileAtomic(p.ca, ByteSpan(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()), 0644);
  if (!w.ok()) return Fail(w.detail());

  auto service = trust::TrustService::Create(std::move(store).value(), std::move(box).value(), {});
  if (!service.ok()) return Fail(service.detail());
  auto token = (*service)->EnsureAdminToken();
  if (!token.ok()) return Fail(token.detail());
  if (*token) {
    std::string text = **token + "\n";
    auto wt = WriteNewSecretFile(p.admin_token, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    SecureZero(text.data(), text.size());
    if (!wt.ok()) return Fail(wt.detail());
  }
  std::printf("store:        %s\ncertificate:  %s (clients: --trust-ca)\nadmin token:  %s (mode 0600)\n"
              "signing key:  %s\naudit key:    %s (keep a copy elsewhere: `cllm trust audit verify --audit-key`)\n",
              where.c_str(), p.ca.c_str(), p.admin_token.c_str(), (*service)->signing_keys().active_kid().c_str(),
              p.audit_key.c_str());
  return 0;
}

struct ServeFlags {
  std::string listen = "127.0.0.1:8600", ready_file, issuer = "cllm-trust";
  int token_lifetime = 300, max_connections = 2048;
  int64_t fleet_key_rotation = 86400, fleet_key_overlap = 3600;
  bool sync_full = false;
};

// RunSchedule applies the fleet-key schedule once and logs what it did.
void RunSchedule(trust::TrustService& svc) {
  auto r = svc.RunFleetKeySchedule();
  if (auto* e = std::get_if<trust::ApiError>(&r)) {
    log::warn("fleet-key schedule: {} ({}); retrying in {} s", e->message, e->code, kScheduleSeconds);
    return;
  }
  const auto& done = std::get<nlohmann::json>(r);
  for (const auto& k : done["retired"]) log::info("fleet key {} retired (scheduled)", k.get<int64_t>());
  for (const auto& k : done["rotated"]) {
    log::info("fleet key {} rotated to {} (scheduled)", k["previous_key_id"].get<int64_t>(), k["key_id"].get<int64_t>());
  }
  for (const auto& e : done["errors"]) {
    log::warn("fleet-key schedule: {}: {} ({}); retrying in {} s", e["chain"].get<std::string>(),
              e["message"].get<std::string>(), e["code"].get<std::string>(), kScheduleSeconds);
  }
}

int Serve(const Paths& p, const std::string& master_key_file, const ServeFlags& f) {
  const std::string& listen = f.listen;
  std::string host;
  uint16_t port = 0;
  if (!ParseHostPort(listen, &host, &port)) return Fail("--listen must be HOST:PORT, got \"" + listen + "\"");
  if (!p.postgres && !fs::exists(p.db)) {
    return Fail(p.db + " does not exist: run `cllm-trust init --state-dir " + p.dir.string() + "` first");
  }
  auto box = LoadBox(p, master_key_file);
  if (!box.ok()) return Fail(box.detail());
  trust::StoreOptions store_options;
  store_options.mode = trust::StoreOptions::Mode::kOpenExisting;
  store_options.full_sync = f.sync_full;
  auto store = trust::Store::Open(p.db, *box, store_options);
  if (!store.ok()) return Fail("refusing to start: " + store.detail());
  auto sealed = (*store)->GetMeta("tls_key_sealed");
  auto cert_pem = (*store)->GetMeta("tls_cert_pem");
  if (!sealed.ok() || !*sealed || !cert_pem.ok() || !*cert_pem) return Fail("the store has no TLS identity (init?)");
  auto sealed_bytes = HexDecode(**sealed);
  if (!sealed_bytes.ok()) return Fail("stored TLS key is corrupt");
  auto pkcs8 = box->Open("tls-key", *sealed_bytes);
  if (!pkcs8.ok()) return Fail(pkcs8.detail());
  auto key = crypto::PrivateKey::FromPkcs8Der(pkcs8->span());
  auto cert = crypto::Certificate::FromPem(**cert_pem);
  if (!key.ok() || !cert.ok()) return Fail("stored TLS identity does not parse");
  auto tls = crypto::TlsContext::Server(crypto::TlsIdentity{std::move(key).value(), std::move(cert).value()});
  if (!tls.ok()) return Fail("TLS: " + tls.detail());

  trust::TrustConfig config;
  config.token_lifetime = std::chrono::seconds(f.token_lifetime);
  config.issuer = f.issuer;
  config.fleet_key_rotation = std::chrono::seconds(f.fleet_key_rotation);
  config.fleet_key_overlap = std::chrono::seconds(f.fleet_key_overlap);
  auto service = trust::TrustService::Create(std::move(store).value(), std::move(box).value(), config);
  if (!service.ok()) return Fail(service.detail());

  net::ServerOptions options;
  options.max_body_bytes = trust::TrustService::kMaxEvidenceBody;  // evidence with certificate chains and collateral
  options.body_limit = [](const net::Request& head) { return trust::TrustService::BodyLimit(head); };
  options.max_connections = f.max_connections;
  options.handler_threads = 4;  // verification and store writes are short
  trust::TrustService* svc = service->get();
  auto https = net::Server::Start(
      host, port, [svc](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) { svc->Handle(r, *w); },
      options, *tls);
  if (!https.ok()) return Fail(https.detail());
  log::info("cllm-trust on https://{}:{} — store {}, issuer {}, tokens {} s, signing key {}, fleet keys {}", host,
            (*https)->port(), svc->store().where(), f.issuer, f.token_lifetime, svc->signing_keys().active_kid(),
            f.fleet_key_rotation == 0 ? std::string("rotated by the admin only")
                                      : "rotated every " + std::to_string(f.fleet_key_rotation) + " s, overlap " +
                                            std::to_string(f.fleet_key_overlap) + " s");
  if (!f.ready_file.empty()) {
    std::ofstream(f.ready_file) << nlohmann::json{{"port", (*https)->port()}}.dump() << "\n";
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto next_schedule = std::chrono::steady_clock::now();
  while (g_signal == 0) {
    if (std::chrono::steady_clock::now() >= next_schedule) {  // rotation 0: only the erasure retry
      RunSchedule(*svc);
      next_schedule = std::chrono::steady_clock::now() + std::chrono::seconds(kScheduleSeconds);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  log::info("shutting down (signal {})", static_cast<int>(g_signal));
  (*https)->Stop();
  return 0;
}

// Upgrade authenticates a schema-1 store (docs/trust.md, "Tamper evidence").
int Upgrade(const Paths& p, const std::string& master_key_file) {
  auto box = LoadBox(p, master_key_file);
  if (!box.ok()) return Fail(box.detail());
  auto rows = trust::Store::Upgrade(p.db, *box);
  if (!rows.ok()) return Fail(rows.detail());
  auto store = trust::Store::Open(p.db, *box);
  if (!store.ok()) return Fail(store.detail());
  const std::string pem = (*store)->audit_key()->ToPem();
  auto w = WriteFileAtomic(p.audit_key, ByteSpan(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()), 0644);
  if (!w.ok()) return Fail(w.detail());
  std::printf("store %s upgraded to schema 2: %d rows authenticated as they are now\naudit key: %s\n",
              (*store)->where().c_str(), *rows, p.audit_key.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cllm-trust — attestation service, token issuer and model key broker"};
  app.set_version_flag("--version", std::string("cllm-trust ") + CLLM_VERSION);
  app.require_subcommand(1);
  std::string state_dir, db_location, master_key_file, log_level = "info";
  ServeFlags sf;
  bool allow_unlocked_memory = false;
  auto* init = app.add_subcommand("init", "Create the store, master key, TLS certificate and admin token");
  auto* serve = app.add_subcommand("serve", "Serve the attestation, token and key-release API over HTTPS");
  auto* upgrade = app.add_subcommand(
      "upgrade", "Authenticate every row of a store written before schema 2 (once; vouches for the rows as they are)");
  for (CLI::App* c : {init, serve, upgrade}) {
    c->add_option("--state-dir", state_dir, "Directory of trust.db, master.key, trust-ca.pem, admin.token")->required();
    c->add_option("--db", db_location,
                  "The store: a SQLite file (default STATE_DIR/trust.db) or a PostgreSQL connection string "
                  "(postgresql://user@host:5432/db or 'host=… dbname=…'; a password belongs in ~/.pgpass or "
                  "$PGPASSWORD, not here)");
    c->add_option("--master-key-file", master_key_file,
                  "Master key (64 hex characters); default STATE_DIR/master.key, else $CLLM_TRUST_MASTER_KEY");
    c->add_flag("--allow-unlocked-memory", allow_unlocked_memory,
                "Start even when memory cannot be locked (keys may be swapped to host-visible disk)");
  }
  serve->add_option("--listen", sf.listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  serve->add_option("--ready-file", sf.ready_file, "Write {\"port\": …} here once listening");
  serve->add_option("--token-lifetime", sf.token_lifetime, "Token lifetime in seconds")
      ->check(CLI::Range(10, 600))
      ->capture_default_str();
  serve->add_option("--max-connections", sf.max_connections, "Concurrent connections")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  serve->add_option("--issuer", sf.issuer, "The tokens' iss claim")->capture_default_str();
  serve->add_option("--fleet-key-rotation", sf.fleet_key_rotation,
                    "Rotate each suite's newest fleet key once it is this many seconds old (0: only by the admin; "
                    "otherwise at least 600)")
      ->check(CLI::Range(int64_t{0}, int64_t{366} * 86400))
      ->capture_default_str();
  serve->add_option("--fleet-key-overlap", sf.fleet_key_overlap,
                    "Retire a suite's older fleet keys this many seconds after its newest was made (at least 120, "
                    "shorter than the rotation)")
      ->check(CLI::Range(int64_t{0}, int64_t{366} * 86400))
      ->capture_default_str();
  serve->add_flag("--sync-full", sf.sync_full, "fsync every store commit (survives power loss; slower)");
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error");
  // Each flag also from CLLM_TRUST_<FLAG> (the command line wins). No config
  // file: CLI11 2.1 reads one only for the top-level app, where a [section]
  // would select a subcommand by itself.
  for (CLI::App* c : {init, serve, upgrade}) app::BindEnvironment(*c, "CLLM_TRUST_");
  CLI11_PARSE(app, argc, argv);
  if (auto e = trust::FleetKeyScheduleError(std::chrono::seconds(sf.fleet_key_rotation),
                                            std::chrono::seconds(sf.fleet_key_overlap));
      serve->parsed() && e) {
    return Fail("--fleet-key-rotation / --fleet-key-overlap: " + *e);
  }
  auto level = log::ParseLevel(log_level);
  if (!level.ok()) return Fail("--log-level: " + level.detail());
  log::Init(*level);
  // Before the master key is read: no core dumps, all memory locked.
  HardeningOptions hardening_options;
  hardening_options.allow_unlocked_memory = allow_unlocked_memory;
  auto hardening = HardenProcess(hardening_options);
  if (!hardening.ok()) return Fail(hardening.detail());
  if (!hardening->memory_locked) {
    log::warn("memory is NOT locked ({}); --allow-unlocked-memory: keys may be swapped to host-visible disk",
              hardening->unlocked_reason);
  }
  Paths paths{fs::path(state_dir), db_location};
  if (init->parsed()) return Init(paths, master_key_file);
  if (upgrade->parsed()) return Upgrade(paths, master_key_file);
  return Serve(paths, master_key_file, sf);
}

// e2e_session.cc — E2eSession, E2eAnswer, E2eExchange (e2e_session.h).

#include "client/e2e_session.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "base/utf8.h"

namespace cllm::client {
namespace {

namespace e2e = channel::e2e;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kMinRefetchInterval{1};

bool SameSuite(const crypto::hpke::Suite& a, const crypto::hpke::Suite& b) {
  return a.kem == b.kem && a.kdf == b.kdf && a.aead == b.aead;
}

bool SameKey(const e2e::KeyConfig& a, const e2e::KeyConfig& b) {
  return a.key_id == b.key_id && SameSuite(a.suite, b.suite) && a.public_key == b.public_key;
}

Error<Errc> E2eError(const Error<e2e::E2eErrc>& e) {
  return MakeError(Errc::kCrypto, std::string(e2e::E2eErrcName(e.code)) + ": " + e.detail);
}

}  // namespace

Result<std::shared_ptr<E2eSession>> E2eSession::Create(E2eKeyFetch fetch, std::optional<crypto::hpke::Suite> suite,
                                                       E2eClientProvider client) {
  std::shared_ptr<E2eSession> s(new E2eSession());
  s->fetch_ = std::move(fetch);
  s->suite_ = suite;
  s->client_ = std::move(client);
  CLLM_ASSIGN_OR_RETURN(auto keys, s->fetch_());
  CLLM_RETURN_IF_ERROR(s->Pick(std::move(keys)));
  s->last_fetch_ = Clock::now();
  return s;
}

Status<> E2eSession::Pick(E2eKeyList list) {
  std::vector<e2e::KeyConfig>& keys = list.keys;
  // cllm-trust lists the preferred key first; the session keeps that order
  // within the suite it seals to (suite_, or the first key's).
  std::vector<e2e::KeyConfig> mine;
  for (auto& k : keys) {
    if (suite_ ? !SameSuite(k.suite, *suite_) : (!mine.empty() && !SameSuite(k.suite, mine.front().suite))) continue;
    mine.push_back(std::move(k));
  }
  if (mine.empty()) {
    return MakeError(Errc::kNotFound, std::string("cllm-trust publishes no e2e key") +
                                          (suite_ ? std::string(" of suite ") + crypto::hpke::SuiteName(*suite_) : ""));
  }
  std::lock_guard<std::mutex> lock(mu_);
  current_ = mine.front();
  keys_ = std::move(mine);
  // The list's age is its oldest statement's (the wall clock's difference,
  // never negative: a clock behind cllm-trust's counts the list as new).
  const auto now = std::chrono::system_clock::now();
  const auto age = list.signed_at && *list.signed_at < now ? now - *list.signed_at : std::chrono::seconds(0);
  list_time_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(age);
  refused_.reset();
  return OkStatus();
}

bool E2eSession::Fetched(Result<E2eKeyList> keys) {
  if (keys.ok()) return Pick(std::move(keys).value()).ok();
  // Refused by this client's own checks: the keys held may be the ones
  // refused now (a release policy weakened since): stop sealing to them.
  if (keys.code() == Errc::kPermission) {
    std::lock_guard<std::mutex> lock(mu_);
    refused_ = keys.detail();
  }
  return false;
}

std::optional<std::string> E2eSession::UnusableLocked() const {
  if (refused_) return "the fleet key list was refused at its last check: " + *refused_;
  const auto age = Clock::now() - list_time_;
  if (age > list_lifetime_) {
    return "the fleet key list last verified was signed by cllm-trust " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
           " s ago, longer than its statements live (" +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(list_lifetime_).count()) +
           " s): no key is sealed to until a fresh list verifies (is cllm-trust, or the path to it, failing?)";
  }
  return std::nullopt;
}

e2e::KeyConfig E2eSession::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void E2eSession::SetListLifetime(std::chrono::milliseconds lifetime) {
  std::lock_guard<std::mutex> lock(mu_);
  list_lifetime_ = lifetime;
}

uint64_t E2eSession::refreshes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refreshes_;
}

bool E2eSession::FetchUnless(const std::function<bool()>& done) {
  // Checked before and again after waiting for a fetch in flight: requests
  // refused while one fetch runs share its result instead of each fetching.
  auto decided = [&]() -> std::optional<bool> {
    if (done()) return true;  // another request's fetch did it already
    if (Clock::now() - last_fetch_ < kMinRefetchInterval) return false;
    return std::nullopt;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto d = decided()) return *d;
  }
  std::lock_guard<std::mutex> one_fetch(fetch_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto d = decided()) return *d;
    last_fetch_ = Clock::now();
    ++refreshes_;
  }
  (void)Fetched(fetch_());
  std::lock_guard<std::mutex> lock(mu_);
  last_fetch_ = Clock::now();  // the interval counts from the end of a (slow) fetch
  return done();
}

bool E2eSession::Refresh(const e2e::KeyConfig& stale) {
  return FetchUnless([&] { return !SameKey(current_, stale); });
}

bool E2eSession::RefreshIfStale() {
  return FetchUnless([&] { return !UnusableLocked(); });
}

std::optional<e2e::KeyConfig> E2eSession::NextKey(const std::vector<e2e::KeyConfig>& tried) {
  if (tried.empty() || tried.size() >= kMaxKeyAttempts) return std::nullopt;
  auto was_tried = [&](const e2e::KeyConfig& k) {
    return std::any_of(tried.begin(), tried.end(), [&](const e2e::KeyConfig& t) { return SameKey(t, k); });
  };
  // A fetch (within the rate limit) whenever the preferred key was refused;
  // a refusal of an older key leaves the list as it is.
  const e2e::KeyConfig preferred = current();
  if (was_tried(preferred)) (void)Refresh(preferred);
  std::lock_guard<std::mutex> lock(mu_);
  if (UnusableLocked()) return std::nullopt;  // Seal says why
  if (!was_tried(current_)) return current_;  // the session moved: its new preferred key
  // Another key of the list only while the list is recent: an old list may
  // hold keys retired since, and whoever can fail the fetches (the path to
  // the upstream) must not move the client back to them.
  if (Clock::now() - list_time_ > list_lifetime_) return std::nullopt;
  for (const auto& k : keys_) {
    if (!was_tried(k)) return k;
  }
  return std::nullopt;
}

void E2eSession::StartAutoRefresh(std::chrono::milliseconds every) {
  std::lock_guard<std::mutex> lock(mu_);
  if (refresher_.joinable() || stop_) return;
  refresher_ = std::thread([this, every] {
    std::unique_lock<std::mutex> held(mu_);
    while (!stop_cv_.wait_for(held, every, [this] { return stop_; })) {
      held.unlock();
      try {
        std::lock_guard<std::mutex> one_fetch(fetch_mu_);
        (void)Fetched(fetch_());  // outside mu_: Seal goes on meanwhile
      } catch (const std::exception&) {  // (out of memory) keep the current key; try again next time
      }
      held.lock();
      last_fetch_ = Clock::now();
    }
  });
}

E2eSession::~E2eSession() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

Result<E2eSession::Sealed> E2eSession::Seal(const std::string& method, const std::string& target,
                                            const std::string& authorization, const std::string& json,
                                            const e2e::KeyConfig* key_override) const {
  if (method != "POST") {
    return MakeError(Errc::kInvalidArgument, "only POST requests are sent encrypted (e2e); got " + method);
  }
  // The router headers: "model" and "stream" of the request's JSON.
  auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return MakeError(Errc::kParse, "the request body is not a JSON object");
  std::string model;
  if (auto m = doc.find("model"); m != doc.end() && m->is_string()) model = m->get<std::string>();
  bool stream = false;
  if (auto st = doc.find("stream"); st != doc.end() && st->is_boolean()) stream = st->get<bool>();
  const std::string path = target.substr(0, target.find('?'));

  e2e::KeyConfig key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto why = UnusableLocked()) return MakeError(Errc::kPermission, *why);
    key = key_override != nullptr ? *key_override : current_;
  }
  std::shared_ptr<const e2e::ClientIdentity> client;
  if (client_) {
    auto id = client_();
    if (!id.ok()) return MakeError(id.code(), "mutual mode: " + id.detail());
    client = std::move(id).value();
  }
  auto sealed = e2e::SealRequest(key, path, model, stream, authorization, json, client.get());
  if (!sealed.ok()) return E2eError(sealed.error());
  Sealed out;
  out.request.method = "POST";
  out.request.target = target;
  out.request.headers["content-type"] = e2e::kRequestContentType;
  for (const auto& [name, value] : sealed->headers) out.request.headers[name] = value;
  out.request.body.assign(sealed->body.begin(), sealed->body.end());
  out.secret = std::move(sealed->response);
  out.key_id = key.key_id;
  out.key = key;
  return out;
}

Result<E2eAnswer> E2eAnswer::Create(const e2e::ResponseSecret& secret) {
  auto opener = e2e::ResponseOpener::Create(secret);
  if (!opener.ok()) return E2eError(opener.error());
  return E2eAnswer(std::move(opener).value());
}

Result<std::vector<E2eAnswer::Event>> E2eAnswer::Feed(std::string_view bytes) {
  auto frames = opener_.Feed(AsBytes(bytes));
  if (!frames.ok()) return E2eError(frames.error());
  std::vector<Event> out;
  for (auto& f : *frames) {
    Event ev;
    ev.final = f.final;
    const std::string_view text = AsChars(f.plaintext.span());
    if (!head_seen_) {
      auto head = e2e::ParseResponseHead(text);
      if (!head.ok()) return E2eError(head.error());
      ev.head = std::move(head).value();
      head_seen_ = true;
    } else {
      ev.body.assign(text);
    }
    out.push_back(std::move(ev));
  }
  return out;
}

Status<> E2eAnswer::Finish() {
  auto st = opener_.Finish();
  if (!st.ok()) return E2eError(st.error());
  return OkStatus();
}

std::string OuterErrorCode(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return "";
  auto c = e->find("code");
  return c != e->end() && c->is_string() ? c->get<std::string>() : "";
}

std::string KeysTriedNote(size_t keys) {
  return " (sealed in turn to " + std::to_string(keys) + (keys == 1 ? " key)" : " keys)");
}

ClientResult<HttpResponse> E2eExchange(FailoverClient& fc, E2eSession& session, const std::string& target,
                                       const std::string& json, const std::string& authorization,
                                       const BodyCallback& on_body) {
  std::vector<e2e::KeyConfig> tried;  // the keys this request was sealed to, in order
  std::string last_error;
  (void)session.RefreshIfStale();  // else Seal says why nothing may be sealed
  std::optional<e2e::KeyConfig> key = session.current();
  for (; key; key = session.NextKey(tried)) {
    auto sealed = session.Seal("POST", target, authorization, json, &*key);
    if (!sealed.ok()) return MakeError(ClientErrc::kProtocol, sealed.detail());
    auto answer = E2eAnswer::Create(sealed->secret);
    if (!answer.ok()) return MakeError(ClientErrc::kProtocol, answer.detail());

    HttpResponse inner;
    bool encrypted = false;     // the outer head said application/cllm-e2e-response
    std::string outer_body;     // a clear error's body
    std::optional<std::string> failure;  // opening failed mid-way
    bool caller_ok = true;
    HeadCallback head = [&](const HttpResponse& h) {
      encrypted = h.status == 200 && h.headers.count("content-type") &&
                  h.headers.at("content-type").rfind(channel::e2e::kResponseContentType, 0) == 0;
    };
    BodyCallback sink = [&](std::string_view bytes) {
      if (!encrypted) {
        if (outer_body.size() < (64 << 10)) outer_body.append(bytes.substr(0, (64 << 10) - outer_body.size()));
        return true;
      }
      auto events = answer->Feed(bytes);
      if (!events.ok()) {
        failure = events.detail();
        return false;
      }
      for (auto& ev : *events) {
        if (ev.head) {
          inner.status = ev.head->status;
          inner.headers["content-type"] = ev.head->content_type;
          for (const auto& [k, v] : ev.head->headers) inner.headers[k] = v;
          continue;
        }
        if (ev.body.empty()) continue;
        const bool is_stream = inner.headers["content-type"].rfind("text/event-stream", 0) == 0;
        if (is_stream && on_body) {
          caller_ok = caller_ok && on_body(ev.body);
        } else {
          inner.body += ev.body;
        }
      }
      return caller_ok;
    };
    auto r = fc.Request("POST", sealed->request.target, sealed->request.body, sealed->request.headers, sink, head);
    if (!r.ok()) return r.error();
    if (!encrypted) {
      const std::string body = r->body.empty() ? outer_body : r->body;
      const std::string code = OuterErrorCode(body);
      last_error = std::to_string(r->status) + " " +
                   EscapeForDisplay((code.empty() ? "" : code + ": ") + body.substr(0, 300));
      if (E2eSession::RefreshWorthy(code)) {
        tried.push_back(sealed->key);
        continue;  // NextKey: the new preferred key, or the older one still published
      }
      return MakeError(ClientErrc::kHttp, last_error);
    }
    if (failure) return MakeError(ClientErrc::kProtocol, *failure);
    if (!caller_ok) return inner;  // the caller stopped reading
    if (auto st = answer->Finish(); !st.ok()) return MakeError(ClientErrc::kProtocol, st.detail());
    return inner;
  }
  return MakeError(ClientErrc::kHttp, last_error + KeysTriedNote(tried.size()));
}

}  // namespace cllm::client

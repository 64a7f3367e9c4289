// net::Server: the listener, admission (max_connections, shedding the
// oldest idle connection), the threads, Drain and Stop. Connections are in
// connection.cc, the ResponseWriter in response_writer.cc.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <sys/resource.h>

#include <cerrno>

#include <future>

#include "base/log.h"
#include "net/server_impl.h"

namespace cllm::net {

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

std::string Request::Path() const { return target.substr(0, target.find('?')); }

std::string Request::Query(const std::string& key) const {
  auto q = target.find('?');
  if (q == std::string::npos) return "";
  const std::string_view rest = std::string_view(target).substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    std::string_view kv = rest.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=') {
      return std::string(kv.substr(key.size() + 1));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return "";
}

std::string Request::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace detail {

// ---------------------------------------------------------------------------
// Core: the connection registry
// ---------------------------------------------------------------------------

void Core::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu);
  open.erase(id);
  handshaking.erase(id);
  reading.erase(id);
  shedding.erase(id);
  if (auto a = address_of.find(id); a != address_of.end()) {
    auto mine = by_address.find(a->second);
    if (mine != by_address.end()) {
      mine->second.erase(id);
      if (mine->second.empty()) by_address.erase(mine);
    }
    address_of.erase(a);
  }
}

void Core::ShedDeclined(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu);
  shedding.erase(id);
}

void Core::SetReading(const std::shared_ptr<Connection>& c, uint64_t id) {
  std::lock_guard<std::mutex> lock(mu);
  if (c == nullptr) {
    reading.erase(id);
  } else if (open.count(id)) {
    reading[id] = c;
  }
}

void Core::HandshakeDone(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu);
  handshaking.erase(id);
}

void Core::SetIdle(const std::shared_ptr<Connection>& c, uint64_t id, std::optional<Clock::time_point> was,
                   std::optional<Clock::time_point> now) {
  std::lock_guard<std::mutex> lock(mu);
  if (was) idle.erase({*was, id});
  if (now && open.count(id)) idle[{*now, id}] = c;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

using detail::Clock;
using detail::Connection;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// AddressKey is what max_connections_per_address counts by: an IPv4
// address (also when mapped into IPv6), or the /64 prefix of an IPv6 one
// (one host usually holds a whole /64).
std::string AddressKey(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_string();
  const asio::ip::address_v6 v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  asio::ip::address_v6::bytes_type b = v6.to_bytes();
  std::fill(b.begin() + 8, b.end(), 0);
  return asio::ip::address_v6(b).to_string() + "/64";
}

}  // namespace

struct Server::Impl {
  detail::Core core;
  tcp::acceptor acceptor{asio::make_strand(core.io)};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> io_threads;
  std::optional<asio::steady_timer> retry;  // after accept fails (EMFILE): try again later
  bool stopped = false;
  uint16_t port = 0;

  void Accept() {
    acceptor.async_accept(asio::make_strand(core.io), [this](boost::system::error_code ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors, or a connection reset before accept: keep
      // serving the others, try again shortly. Out of descriptors, the
      // oldest idle connection makes room, as at max_connections: otherwise
      // idle connections held open would lock everyone out until they time
      // out (the descriptor limit may be below max_connections × listeners).
      const bool no_fds = ec == asio::error::no_descriptors || ec.value() == ENFILE;
      bool shed = false;
      if (no_fds) {
        std::lock_guard<std::mutex> lock(core.mu);
        if (std::shared_ptr<Connection> victim = TakeOldestIdle()) {
          ++core.shed_idle;
          shed = true;
          ShedLater(std::move(victim), /*reading_too=*/false);
        }
      }
      log::warn("accept failed: {}{}", ec.message(), shed ? "; an idle connection was closed to make room" : "");
      retry.emplace(acceptor.get_executor(), std::chrono::milliseconds(shed ? 5 : 50));
      retry->async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec && acceptor.is_open()) Accept();
      });
      return;
    }
    Admit(std::move(socket));
    Accept();
  }

  void Admit(tcp::socket socket) {
    ++core.accepted;
    boost::system::error_code ec;
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's
    // algorithm holds them back for the peer's delayed ACK (~40 ms).
    socket.set_option(tcp::no_delay(true), ec);
    auto endpoint = socket.remote_endpoint(ec);
    std::string peer = ec ? "" : endpoint.address().to_string();
    // Only counted with a per-address limit: no string work per accept otherwise.
    const std::string address =
        ec || core.options.max_connections_per_address <= 0 ? "" : AddressKey(endpoint.address());
    auto strand = socket.get_executor();

    std::unique_ptr<Stream> stream;
    if (core.tls) {
      auto made = Stream::Tls(std::move(socket), core.tls);
      if (!made.ok()) {
        ++core.handshake_failed;
        log::warn("cannot start TLS on a connection: {}", made.detail());
        return;
      }
      stream = std::move(made).value();
    } else {
      stream = Stream::Plain(std::move(socket));
    }
    const uint64_t id = core.next_id++;
    auto conn = std::make_shared<Connection>(core, id, std::move(stream), strand, std::move(peer));
    {
      std::lock_guard<std::mutex> lock(core.mu);
      if (!address.empty() && !MakeRoomForAddress(address)) return;  // `conn` and its socket close here
      const size_t live = core.open.size() - std::min(core.open.size(), core.shedding.size());
      const size_t max_connections = static_cast<size_t>(core.options.max_connections);
      if (live > max_connections) {
        ++core.refused;  // over already (a victim declined): never further
        return;
      }
      if (live == max_connections) {
        // At the limit: the oldest idle keep-alive connection makes room
        // (one that never sent a byte is idle too); with none idle, the
        // oldest still in its TLS handshake (silent connects would otherwise
        // fill the table, each renewed every handshake_timeout); then the
        // oldest still reading its request (slow senders would otherwise
        // fill it, each for head_timeout + body_timeout); with none of
        // these the newcomer is refused (closed at once).
        std::shared_ptr<Connection> victim = TakeOldestIdle();
        bool reading_too = false;
        if (victim) {
          ++core.shed_idle;
        } else if ((victim = TakeOldest(core.handshaking))) {
          ++core.shed_handshaking;
        } else if ((victim = TakeOldest(core.reading))) {
          ++core.shed_reading;
          reading_too = true;
        } else {
          ++core.refused;
          return;  // `conn` and its socket close here
        }
        ShedLater(std::move(victim), reading_too);
      }
      core.open[id] = conn;
      if (core.tls) core.handshaking[id] = conn;
      if (!address.empty()) {
        core.by_address[address].insert(id);
        core.address_of[id] = address;
      }
    }
    asio::post(strand, [conn] { conn->Start(); });
  }

  // MakeRoomForAddress applies max_connections_per_address to a newcomer
  // from `address`: at its limit the address makes room among its own
  // connections (the oldest not yet handling a request), or is refused
  // (false): however fast it connects, it holds no more of the table.
  // Connections whose shed is under way (`shedding`) no longer count, and
  // are not picked twice; one that declines (it started a request) counts
  // again. core.mu held.
  bool MakeRoomForAddress(const std::string& address) {
    auto mine = core.by_address.find(address);
    if (mine == core.by_address.end()) return true;
    size_t counted = 0;
    std::shared_ptr<Connection> victim;
    for (uint64_t other : mine->second) {
      if (core.shedding.count(other)) continue;
      ++counted;
      if (victim) continue;
      auto it = core.open.find(other);
      victim = it == core.open.end() ? nullptr : it->second.lock();
      if (victim && !victim->Sheddable()) victim.reset();
    }
    const size_t limit = static_cast<size_t>(core.options.max_connections_per_address);
    if (counted < limit) return true;
    // Over the cap already (a victim started a request instead of closing):
    // refused until some close, never further over.
    if (!victim || counted > limit) {
      ++core.refused;
      ++core.refused_same_address;
      return false;
    }
    ++core.shed_same_address;
    ShedLater(std::move(victim), /*reading_too=*/true);
    return true;
  }

  // ShedLater marks `victim` as being shed (it no longer counts against a
  // limit) and asks its strand to close it (Connection::Shed, which gives
  // the mark back if it declines). core.mu held.
  void ShedLater(std::shared_ptr<Connection> victim, bool reading_too) {
    core.shedding.insert(victim->id());
    asio::post(victim->strand(), [victim, reading_too] { victim->Shed(reading_too); });
  }

  // TakeOldest removes the oldest live connection of `set` not already
  // being shed and returns it (null: none). Those being shed stay: if one
  // declines, it is still where the next newcomer finds it. Dead entries
  // go. core.mu held.
  template <typename Key>
  std::shared_ptr<Connection> TakeOldest(std::map<Key, std::weak_ptr<Connection>>& set) {
    for (auto it = set.begin(); it != set.end();) {
      if (core.shedding.count(IdOf(it->first))) {
        ++it;
        continue;
      }
      std::shared_ptr<Connection> victim = it->second.lock();
      it = set.erase(it);
      if (victim) return victim;
    }
    return nullptr;
  }
  static uint64_t IdOf(uint64_t id) { return id; }
  static uint64_t IdOf(const std::pair<Clock::time_point, uint64_t>& key) { return key.second; }

  // TakeOldestIdle is TakeOldest of the idle set. core.mu held.
  std::shared_ptr<Connection> TakeOldestIdle() { return TakeOldest(core.idle); }

  // OnAcceptor runs `f` on the acceptor's strand and waits for it.
  void OnAcceptor(std::function<void()> f) {
    std::promise<void> done;
    asio::post(acceptor.get_executor(), [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  void CloseListener() {
    if (io_threads.empty()) return;
    OnAcceptor([this] {
      boost::system::error_code ec;
      acceptor.close(ec);
      if (retry) retry->cancel();
    });
  }

  std::vector<std::shared_ptr<Connection>> Snapshot() {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard<std::mutex> lock(core.mu);
    for (auto& [id, weak] : core.open) {
      if (auto c = weak.lock()) out.push_back(std::move(c));
    }
    return out;
  }

  size_t OpenCount() {
    std::lock_guard<std::mutex> lock(core.mu);
    return core.open.size();
  }

  // WaitClosed waits until no connection is open or `until` has passed.
  bool WaitClosed(Clock::time_point until) {
    while (OpenCount() > 0) {
      if (Clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  void CloseAll() {
    for (auto& c : Snapshot()) asio::post(c->strand(), [c] { c->Close("server stopping"); });
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

namespace {

// RaiseFileLimit lifts the soft limit on open descriptors to the hard one:
// each connection is a descriptor, and the default soft limit (1024) would
// cap the server long before max_connections.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0) {
    log::debug("raised the open-file limit from {} to {}", before, lim.rlim_max);
  }
}

NetStatus CheckOptions(const ServerOptions& o) {
  using std::chrono::milliseconds;
  if (o.io_threads < 1 || o.handler_threads < 1 || o.max_connections < 1) {
    return MakeError(NetErrc::kInvalidArgument, "io_threads, handler_threads and max_connections must be at least 1");
  }
  if (o.max_header_bytes < 64 || o.max_header_bytes > UINT32_MAX) {
    return MakeError(NetErrc::kInvalidArgument, "max_header_bytes out of range");
  }
  for (milliseconds t : {o.handshake_timeout, o.head_timeout, o.body_timeout, o.idle_timeout, o.write_timeout}) {
    if (t <= milliseconds(0)) return MakeError(NetErrc::kInvalidArgument, "every timeout must be positive");
  }
  return OkStatus();
}

}  // namespace

NetResult<std::unique_ptr<Server>> Server::Start(const std::string& host, uint16_t port, Handler handler,
                                                 ServerOptions options, std::shared_ptr<crypto::TlsContext> tls) {
  CLLM_RETURN_IF_ERROR(CheckOptions(options));
  if (!handler) return MakeError(NetErrc::kInvalidArgument, "no handler");
  auto impl = std::make_unique<Impl>();
  auto& core = impl->core;
  core.options = options;
  core.handler = std::move(handler);
  if (tls) {
    if (!tls->is_server()) return MakeError(NetErrc::kInvalidArgument, "a server needs a server TLS context");
    CLLM_ASSIGN_OR_RETURN(core.tls, TlsStreamContext::Make(std::move(tls)));
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return MakeError(NetErrc::kInvalidArgument, "bad listen address '" + host + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  auto& acceptor = impl->acceptor;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(NetErrc::kListen, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  impl->port = acceptor.local_endpoint(ec).port();
  RaiseFileLimit();

  core.handlers.emplace(static_cast<size_t>(options.handler_threads));
  impl->work.emplace(core.io.get_executor());
  Impl* raw = impl.get();
  asio::post(acceptor.get_executor(), [raw] { raw->Accept(); });
  for (int i = 0; i < options.io_threads; ++i) {
    impl->io_threads.emplace_back([raw] { raw->core.io.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::Drain(std::chrono::milliseconds deadline) {
  if (!impl_ || impl_->stopped) return 0;
  const auto until = Clock::now() + deadline;
  impl_->CloseListener();
  for (auto& c : impl_->Snapshot()) asio::post(c->strand(), [c] { c->BeginDrain(); });
  if (impl_->WaitClosed(until)) return impl_->core.cut_off.load();
  // What is left past the deadline is cut off.
  impl_->core.cutting_off = true;
  impl_->CloseAll();
  impl_->WaitClosed(Clock::now() + std::chrono::seconds(5));
  return impl_->core.cut_off.load();
}

void Server::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  auto& core = impl_->core;
  impl_->CloseListener();
  // Every connection closes; a handler still streaming sees Write fail.
  impl_->CloseAll();
  impl_->WaitClosed(Clock::now() + std::chrono::seconds(5));
  core.handlers->join();
  impl_->work.reset();
  core.io.stop();
  for (auto& t : impl_->io_threads) t.join();
  // From here writers that outlive the server post nothing.
  std::lock_guard<std::mutex> lock(core.life->mu);
  core.life->open = false;
}

uint16_t Server::port() const { return impl_->port; }

ServerStats Server::Stats() const {
  ServerStats s;
  auto& core = impl_->core;
  {
    std::lock_guard<std::mutex> lock(core.mu);
    s.open_connections = static_cast<int>(core.open.size());
    s.idle_connections = static_cast<int>(core.idle.size());
  }
  s.accepted = core.accepted;
  s.shed_idle = core.shed_idle;
  s.shed_handshaking = core.shed_handshaking;
  s.refused = core.refused;
  s.shed_reading = core.shed_reading;
  s.shed_same_address = core.shed_same_address;
  s.refused_same_address = core.refused_same_address;
  s.timed_out = core.timed_out;
  s.handshake_failed = core.handshake_failed;
  s.requests = core.requests;
  s.body_budget_refused = core.body_budget_refused;
  return s;
}

}  // namespace cllm::net

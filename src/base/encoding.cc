#include "base/encoding.h"

#include <array>

namespace cllm {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Encode64(ByteSpan data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t left = data.size() - i;
  if (left > 0) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (left == 2) v |= uint32_t{data[i + 1]} << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (left == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out.append(left == 1 ? "==" : "=");
  }
  return out;
}

Result<Bytes> Decode64(std::string_view text, const char* alphabet, bool skip_space) {
  std::array<int8_t, 256> table;
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);

  Bytes out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (skip_space && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    int v = table[static_cast<uint8_t>(c)];
    if (v < 0 || padding > 0) {
      return MakeError(Errc::kParse, "invalid base64 character at position " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  // 6 leftover bits cannot encode a byte; non-zero leftover bits mean a
  // non-canonical encoding.
  if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0 || padding > 2) {
    return MakeError(Errc::kParse, "invalid base64 length or trailing bits");
  }
  return out;
}

}  // namespace

std::string HexEncode(ByteSpan data) {
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 15];
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return MakeError(Errc::kParse, "hex string has odd length");
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return MakeError(Errc::kParse,
                       "invalid hex character at position " + std::to_string(2 * i + (hi < 0 ? 0 : 1)));
    }
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

std::string Base64Encode(ByteSpan data) { return Encode64(data, kStd, true); }
std::string Base64UrlEncode(ByteSpan data) { return Encode64(data, kUrl, false); }
Result<Bytes> Base64Decode(std::string_view text) { return Decode64(text, kStd, true); }
Result<Bytes> Base64UrlDecode(std::string_view text) { return Decode64(text, kUrl, false); }

}  // namespace cllm

// encoding.h — hex and base64 (RFC 4648) encoders and strict decoders.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm {

// HexEncode returns lowercase hex of `data`.
std::string HexEncode(ByteSpan data);
// HexDecode accepts upper or lower case; fails with kParse on an odd length
// or a non-hex character (naming its position).
Result<Bytes> HexDecode(std::string_view hex);

// Base64Encode uses the standard alphabet with padding.
std::string Base64Encode(ByteSpan data);
// Base64UrlEncode uses the URL-safe alphabet without padding (JOSE).
std::string Base64UrlEncode(ByteSpan data);
// Base64Decode accepts the standard alphabet; padding is optional; ASCII
// whitespace (as in PEM bodies) is skipped. Fails with kParse otherwise.
Result<Bytes> Base64Decode(std::string_view text);
// Base64UrlDecode accepts the URL-safe alphabet, padding optional.
Result<Bytes> Base64UrlDecode(std::string_view text);

}  // namespace cllm

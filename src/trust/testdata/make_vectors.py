# Independent ECDH-ES + A256GCM JWE (RFC 7516/7518) with python cryptography, to
# the RFC 6979 A.2.5 P-256 key. Also prints the RFC 7638 thumbprint of its JWK.
import base64, hashlib, json, os, struct
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
d = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
rk = ec.derive_private_key(d, ec.SECP256R1()).public_key()
n = rk.public_numbers()
jwk = {"crv": "P-256", "kty": "EC", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
print("jwk", json.dumps(jwk))
canon = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
print("thumbprint", b64(hashlib.sha256(canon).digest()))
eph = ec.generate_private_key(ec.SECP256R1())
en = eph.public_key().public_numbers()
hdr = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": "py",
       "epk": {"kty": "EC", "crv": "P-256", "x": b64(en.x.to_bytes(32, "big")), "y": b64(en.y.to_bytes(32, "big"))}}
z = eph.exchange(ec.ECDH(), rk)
lp = lambda b: struct.pack(">I", len(b)) + b
other = lp(b"A256GCM") + lp(b"") + lp(b"") + struct.pack(">I", 256)
cek = hashlib.sha256(struct.pack(">I", 1) + z + other).digest()
h64 = b64(json.dumps(hdr, separators=(",", ":")).encode())
iv = os.urandom(12)
pt = b"model key from python: 0123456789abcdef"
ct = AESGCM(cek).encrypt(iv, pt, h64.encode())
print("jwe", ".".join([h64, "", b64(iv), b64(ct[:-16]), b64(ct[-16:])]))
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
sk = ec.derive_private_key(d, ec.SECP256R1())
si = b64(json.dumps({"alg": "ES256", "kid": "py", "typ": "JWT"}, separators=(",", ":")).encode()) + "." + \
     b64(json.dumps({"iss": "py", "exp": 2000000000}, separators=(",", ":")).encode())
r, s = decode_dss_signature(sk.sign(si.encode(), ec.ECDSA(hashes.SHA256())))
print("jws", si + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))

/**
 * Signature checks and hashing through LuaJIT FFI into OpenSSL's libcrypto: inside nginx the
 * symbols are already in the process (ffi.C); under plain LuaJIT (unit tests, benchmarks) the
 * library is loaded by name. No crypto is written in Lua.
 *
 * Only calls that exist in both OpenSSL 1.1.1 and 3.x are used (RSA padding goes through
 * EVP_PKEY_CTX_ctrl, which 1.1.1 hides behind macros), so OpenResty images of either age work.
 */
import * as ffi from "ffi";
import { matches } from "../core/str";

ffi.cdef(`
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct engine_st ENGINE;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sha256(void);
int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl);
int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
EVP_MD *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_CTX_ctrl(EVP_PKEY_CTX *ctx, int keytype, int optype, int cmd, int p1, void *p2);
EVP_PKEY *d2i_PUBKEY(EVP_PKEY **a, const unsigned char **pp, long length);
void EVP_PKEY_free(EVP_PKEY *pkey);
EVP_PKEY *EVP_PKEY_new_raw_private_key(int type, ENGINE *e, const unsigned char *priv, size_t len);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs, size_t tbslen);
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
void ERR_clear_error(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
`);

type CData = ffi.CData;

/** The libcrypto calls this module binds, typed (ffi.C itself is untyped). */
interface LibCrypto {
  EVP_MD_CTX_new(this: void): CData | undefined;
  EVP_MD_CTX_free(this: void, ctx: CData): void;
  EVP_sha256(this: void): CData;
  EVP_Digest(this: void, data: string | CData, count: number, md: CData, size: CData | undefined, type: CData, impl: undefined): number;
  EVP_DigestInit_ex(this: void, ctx: CData, type: CData, impl: undefined): number;
  EVP_DigestUpdate(this: void, ctx: CData, d: string | CData, cnt: number): number;
  EVP_DigestFinal_ex(this: void, ctx: CData, md: CData, s: undefined): number;
  /** OpenSSL 3 only. */
  EVP_MD_fetch(this: void, libctx: undefined, algorithm: string, properties: undefined): CData | undefined;
  EVP_DigestVerifyInit(this: void, ctx: CData, pctx: CData, type: CData, e: undefined, pkey: CData): number;
  EVP_DigestVerify(this: void, ctx: CData, sig: string, siglen: number, tbs: string, tbslen: number): number;
  EVP_PKEY_CTX_ctrl(this: void, ctx: CData, keytype: number, optype: number, cmd: number, p1: number, p2: undefined): number;
  d2i_PUBKEY(this: void, a: undefined, pp: CData, length: number): CData | undefined;
  EVP_PKEY_free(this: void, pkey: CData): void;
  EVP_PKEY_new_raw_private_key(this: void, type: number, e: undefined, priv: string, len: number): CData | undefined;
  EVP_DigestSignInit(this: void, ctx: CData, pctx: undefined, type: undefined, e: undefined, pkey: CData): number;
  EVP_DigestSign(this: void, ctx: CData, sig: CData, siglen: CData, tbs: string, tbslen: number): number;
  EVP_DecodeBlock(this: void, t: CData, f: string, n: number): number;
  ERR_clear_error(this: void): void;
  HMAC(this: void, md: CData, key: string, keyLen: number, d: string, n: number, out: CData, outLen: undefined): CData | undefined;
}

function bind(): LibCrypto {
  const inProcess = ffi.C as LibCrypto;
  const [found] = pcall(() => inProcess.EVP_sha256);
  if (found) return inProcess;
  const [ok3, lib3] = pcall(ffi.load, "libcrypto.so.3");
  if (ok3) return lib3 as LibCrypto;
  return ffi.load("crypto") as LibCrypto;
}

const C = bind();
const SHA256 = C.EVP_sha256();

/**
 * The digest for hashing on the request path (token cache keys, cache keys): with OpenSSL 3,
 * fetched once, so no call looks the implementation up again (EVP_sha256() is a legacy handle
 * that each EVP_Digest fetches anew: 514 ns against 214 ns for 150 B under LuaJIT here); with
 * 1.1.1, EVP_sha256(). One context, reused: nothing hashed here yields.
 */
function fetchedSha256(): CData {
  const [ok, md] = pcall(() => C.EVP_MD_fetch(undefined, "SHA256", undefined));
  // A NULL pointer compares equal to nil in LuaJIT: a failed fetch falls back too.
  return ok && md !== undefined ? md : SHA256;
}
const HASH_MD = fetchedSha256();
const hashCtx = C.EVP_MD_CTX_new()!;
const u8arr = ffi.typeof("unsigned char[?]");
const pkctxPtr = ffi.typeof("EVP_PKEY_CTX*[1]");
const constU8Ptr = ffi.typeof("const unsigned char*[1]");
const digestBuf = u8arr(32);

const EVP_PKEY_RSA = 6;
const EVP_PKEY_CTRL_RSA_PADDING = 0x1000 + 1;
const EVP_PKEY_CTRL_RSA_PSS_SALTLEN = 0x1000 + 2;
const RSA_PKCS1_PSS_PADDING = 6;
/** Salt length equal to the digest length, as RFC 7518 requires for PS256. */
const RSA_PSS_SALTLEN_DIGEST = -1;

const byte = string.byte;
const char = string.char;
const sub = string.sub;
const rep = string.rep;
const gsub = string.gsub;

/** SHA-256 of `data`, 32 raw bytes. */
export function sha256(data: string): string {
  C.EVP_DigestInit_ex(hashCtx, HASH_MD, undefined);
  C.EVP_DigestUpdate(hashCtx, data, data.length);
  C.EVP_DigestFinal_ex(hashCtx, digestBuf, undefined);
  return ffi.string(digestBuf, 32);
}

/** HMAC-SHA256 of `data` under `key`, 32 raw bytes (audit checkpoints, hashed query values). */
export function hmacSha256(key: string, data: string): string {
  C.HMAC(HASH_MD, key, key.length, data, data.length, digestBuf, undefined);
  return ffi.string(digestBuf, 32);
}

/**
 * SHA-256 of `head`, `body` and `tail` in turn, without joining them: an audit seal's head, its
 * batch's lines and their last newline (the batch is joined once, with what follows it).
 */
export function sha256Pair(head: string, body: string, tail = ""): string {
  C.EVP_DigestInit_ex(hashCtx, HASH_MD, undefined);
  C.EVP_DigestUpdate(hashCtx, head, head.length);
  C.EVP_DigestUpdate(hashCtx, body, body.length);
  if (tail !== "") C.EVP_DigestUpdate(hashCtx, tail, tail.length);
  C.EVP_DigestFinal_ex(hashCtx, digestBuf, undefined);
  return ffi.string(digestBuf, 32);
}

const HEX = new LuaTable<number, string>();
for (let b = 0; b < 256; b++) HEX.set(b, string.format("%02x", b));

/** Lower-case hex of `s` (digests: 32 bytes to 64 digits). */
export function toHex(s: string): string {
  const parts: string[] = [];
  for (let i = 1; i <= s.length; i++) parts[i - 1] = HEX.get(byte(s, i))!;
  return table.concat(parts);
}

const bytePtr = ffi.typeof("const uint8_t *");

/**
 * SHA-256 of `s` from byte `from` (1-based, as string.sub) to its end, without copying the
 * tail into a new Lua string first: the hot path hashes the token inside `Bearer <token>`.
 */
export function sha256From(s: string, from: number): string {
  const ptr = (ffi.cast(bytePtr, s) as unknown as number) + (from - 1);
  C.EVP_DigestInit_ex(hashCtx, HASH_MD, undefined);
  C.EVP_DigestUpdate(hashCtx, ptr as unknown as CData, s.length - from + 1);
  C.EVP_DigestFinal_ex(hashCtx, digestBuf, undefined);
  return ffi.string(digestBuf, 32);
}

const B64URL_TO_STD: Record<string, string> = { "-": "+", "_": "/" };

/** base64url (no padding, RFC 7515) to bytes; undefined for anything else. */
export function base64urlDecode(s: string): string | undefined {
  const n = s.length;
  if (n === 0) return "";
  if (n % 4 === 1 || matches(s, "[^%w%-_]")) return undefined;
  const [std] = gsub(s, "[-_]", B64URL_TO_STD);
  const pad = (4 - (n % 4)) % 4;
  const padded = std + rep("=", pad);
  const out = u8arr(padded.length);
  const len = C.EVP_DecodeBlock(out, padded, padded.length);
  if (len < 0) {
    C.ERR_clear_error();
    return undefined;
  }
  // EVP_DecodeBlock counts the bytes the padding stands for; drop them.
  return ffi.string(out, len - pad);
}

function derLength(n: number): string {
  if (n < 0x80) return char(n);
  if (n < 0x100) return char(0x81, n);
  return char(0x82, math.floor(n / 256), n % 256);
}

function der(tag: number, body: string): string {
  return char(tag) + derLength(body.length) + body;
}

/** A DER INTEGER from unsigned big-endian bytes: no leading zeros, a zero before a high bit. */
function derUint(bytes: string): string {
  let i = 1;
  while (i < bytes.length && byte(bytes, i) === 0) i = i + 1;
  let b = sub(bytes, i);
  if (byte(b, 1) >= 0x80) b = char(0) + b;
  return der(0x02, b);
}

// AlgorithmIdentifier DER for rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters, and
// for id-ecPublicKey (1.2.840.10045.2.1) on prime256v1 (1.2.840.10045.3.1.7).
const RSA_ALG = der(0x30, char(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00));
const EC_P256_ALG = der(0x30, char(0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07));

export type KeyError = "bad_jwk" | "unsupported_key";

/** A public key ready for verification; freed by the GC. */
export interface PublicKey {
  readonly kty: "RSA" | "EC";
  readonly pkey: CData;
}

export interface Jwk {
  readonly kty?: unknown;
  readonly n?: unknown;
  readonly e?: unknown;
  readonly crv?: unknown;
  readonly x?: unknown;
  readonly y?: unknown;
}

function spki(jwk: Jwk): LuaMultiReturn<[string, "RSA" | "EC"] | [undefined, KeyError]> {
  if (jwk.kty === "RSA") {
    if (typeof jwk.n !== "string" || typeof jwk.e !== "string") return $multi(undefined, "bad_jwk");
    const n = base64urlDecode(jwk.n);
    const e = base64urlDecode(jwk.e);
    // 2048 bits at least: shorter RSA keys are not accepted for RS256/PS256 (RFC 7518 3.3).
    if (n === undefined || e === undefined || n.length < 256 || e.length === 0) return $multi(undefined, "bad_jwk");
    const rsaKey = der(0x30, derUint(n) + derUint(e));
    return $multi(der(0x30, RSA_ALG + der(0x03, char(0) + rsaKey)), "RSA");
  }
  if (jwk.kty === "EC") {
    if (jwk.crv !== "P-256") return $multi(undefined, "unsupported_key");
    if (typeof jwk.x !== "string" || typeof jwk.y !== "string") return $multi(undefined, "bad_jwk");
    const x = base64urlDecode(jwk.x);
    const y = base64urlDecode(jwk.y);
    if (x === undefined || y === undefined || x.length !== 32 || y.length !== 32) return $multi(undefined, "bad_jwk");
    return $multi(der(0x30, EC_P256_ALG + der(0x03, char(0, 4) + x + y)), "EC");
  }
  return $multi(undefined, "unsupported_key");
}

/** Parses a JWK (RSA >= 2048 bits, or EC P-256) into an OpenSSL key. */
export function publicKeyFromJwk(jwk: Jwk): LuaMultiReturn<[PublicKey, undefined] | [undefined, KeyError]> {
  const [bytes, kty] = spki(jwk);
  if (bytes === undefined) return $multi(undefined, kty as KeyError);
  const buf = u8arr(bytes.length);
  ffi.copy(buf, bytes, bytes.length);
  const pp = constU8Ptr();
  // C arrays are 0-based; a TS array index would be shifted to 1 by TSTL.
  (pp as unknown as LuaTable<number, CData>).set(0, buf);
  const pkey = C.d2i_PUBKEY(undefined, pp, bytes.length);
  // A NULL pointer compares equal to nil in LuaJIT.
  if (pkey === undefined) {
    // Failures queue OpenSSL errors per thread; left there, they surface in later TLS calls.
    C.ERR_clear_error();
    return $multi(undefined, "bad_jwk");
  }
  return $multi({ kty: kty as "RSA" | "EC", pkey: ffi.gc(pkey, C.EVP_PKEY_free) }, undefined);
}

/** JWS ES256 signatures are r || s (32 bytes each); OpenSSL wants a DER ECDSA-Sig-Value. */
function es256ToDer(sig: string): string | undefined {
  if (sig.length !== 64) return undefined;
  return der(0x30, derUint(sub(sig, 1, 32)) + derUint(sub(sig, 33, 64)));
}

export type Alg = "RS256" | "PS256" | "ES256";

/** Checks a JWS signature over `input` with `key`; false for any mismatch or malformed input. */
export function verify(alg: Alg, key: PublicKey, input: string, sig: string): boolean {
  if ((alg === "ES256") !== (key.kty === "EC")) return false;
  let s = sig;
  if (alg === "ES256") {
    const d = es256ToDer(sig);
    if (d === undefined) return false;
    s = d;
  }
  const ctx = C.EVP_MD_CTX_new();
  if (ctx === undefined) return false;
  const pctx = pkctxPtr();
  let ok = C.EVP_DigestVerifyInit(ctx, pctx, SHA256, undefined, key.pkey) === 1;
  if (ok && alg === "PS256") {
    const pk = (pctx as unknown as LuaTable<number, CData>).get(0);
    ok =
      C.EVP_PKEY_CTX_ctrl(pk, EVP_PKEY_RSA, -1, EVP_PKEY_CTRL_RSA_PADDING, RSA_PKCS1_PSS_PADDING, undefined) > 0 &&
      C.EVP_PKEY_CTX_ctrl(pk, EVP_PKEY_RSA, -1, EVP_PKEY_CTRL_RSA_PSS_SALTLEN, RSA_PSS_SALTLEN_DIGEST, undefined) > 0;
  }
  if (ok) ok = C.EVP_DigestVerify(ctx, s, s.length, input, input.length) === 1;
  C.EVP_MD_CTX_free(ctx);
  if (!ok) C.ERR_clear_error();
  return ok;
}

const EVP_PKEY_ED25519 = 1087;
/** PKCS#8 v1 (RFC 8410) of an Ed25519 key, up to its 32-byte seed: what `openssl genpkey -algorithm ed25519` writes. */
const ED25519_PKCS8 = char(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);
const sizeTPtr = ffi.typeof("size_t[1]");

/** An Ed25519 private key from its PEM (PKCS#8, RFC 8410); undefined for anything else. */
export function ed25519PrivateKey(pem: string): CData | undefined {
  const [, , b64] = string.find(pem, "%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-([%w%+/=%s]+)%-%-%-%-%-END PRIVATE KEY%-%-%-%-%-");
  if (b64 === undefined) return undefined;
  const [flat] = gsub(b64 as string, "%s", "");
  const out = u8arr(flat.length);
  const n = C.EVP_DecodeBlock(out, flat, flat.length);
  if (n < 0) {
    C.ERR_clear_error();
    return undefined;
  }
  // 48 bytes are 64 base64 digits without padding: anything longer is another key or form.
  if (n !== 48) return undefined;
  const der = ffi.string(out, 48);
  if (sub(der, 1, 16) !== ED25519_PKCS8) return undefined;
  const pkey = C.EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, undefined, sub(der, 17, 48), 32);
  if (pkey === undefined) {
    C.ERR_clear_error();
    return undefined;
  }
  return ffi.gc(pkey, C.EVP_PKEY_free);
}

/** The Ed25519 signature of `data` (64 raw bytes), or undefined when libcrypto refuses. */
export function ed25519Sign(pkey: CData, data: string): string | undefined {
  const ctx = C.EVP_MD_CTX_new();
  if (ctx === undefined) return undefined;
  const sig = u8arr(64);
  const len = sizeTPtr(64);
  const ok = C.EVP_DigestSignInit(ctx, undefined, undefined, undefined, pkey) === 1 && C.EVP_DigestSign(ctx, sig, len, data, data.length) === 1;
  C.EVP_MD_CTX_free(ctx);
  if (!ok) {
    C.ERR_clear_error();
    return undefined;
  }
  return ffi.string(sig, 64);
}

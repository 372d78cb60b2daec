/**
 * Typed declarations of the part of the lua-nginx-module (0.10.23) and lua-resty-core API that
 * fhir-edge uses. Written by hand on purpose: every call that can come back empty is typed
 * `| undefined`, so the compiler makes the request path handle it.
 *
 * `ngx` is declared as a value of interface type (not a namespace) because `ngx.var` uses a
 * reserved word. Module functions take `this: void` (called as `ngx.say(x)`); shared dicts keep
 * `self` (`dict:get(k)`) through an explicit `this` parameter.
 */

type NgxOk<T> = LuaMultiReturn<[T, undefined] | [undefined, string]>;

interface NgxReq {
  get_method(this: void): string;
  get_headers(this: void, maxHeaders?: number, raw?: boolean): LuaMultiReturn<[Record<string, string | string[] | undefined>, string | undefined]>;
  get_uri_args(this: void, maxArgs?: number): LuaMultiReturn<[Record<string, string | boolean | (string | boolean)[] | undefined>, string | undefined]>;
  set_header(this: void, name: string, value: string | string[]): void;
  /** Replaces the request's query (`$args`, and what get_uri_args parses). */
  set_uri_args(this: void, args: string): void;
  clear_header(this: void, name: string): void;
  start_time(this: void): number;
  /** Reads the request body (yields); afterwards get_post_args can parse it. */
  read_body(this: void): void;
  /** The body read by read_body, or undefined when empty or kept in a temp file. */
  get_body_data(this: void): string | undefined;
  get_body_file(this: void): string | undefined;
  /** Replaces the request body (after read_body); nginx sends the new one, with its length. */
  set_body_data(this: void, data: string): void;
  get_post_args(this: void, maxArgs?: number): LuaMultiReturn<[Record<string, string | boolean | (string | boolean)[] | undefined> | undefined, string | undefined]>;
}

interface NgxWorker {
  id(this: void): number | undefined;
  pid(this: void): number;
  count(this: void): number;
  exiting(this: void): boolean;
}

interface NgxRe {
  find(this: void, subject: string, regex: string, options?: string): LuaMultiReturn<[number | undefined, number | undefined, string | undefined]>;
  match(this: void, subject: string, regex: string, options?: string): LuaMultiReturn<[(string | false)[] | undefined, string | undefined]>;
}

/** A `lua_shared_dict` zone. Methods keep `self`: they are called as `dict:get(key)`. */
interface SharedDict {
  get(this: SharedDict, key: string): LuaMultiReturn<[string | number | boolean | undefined, number | undefined]>;
  set(this: SharedDict, key: string, value: string | number | boolean, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  add(this: SharedDict, key: string, value: string | number | boolean, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  incr(this: SharedDict, key: string, value: number, init?: number, initTtl?: number): LuaMultiReturn<[number | undefined, string | undefined, boolean | undefined]>;
  /** Like add, but never evicts a live entry to make room: "no memory" instead. */
  safe_add(this: SharedDict, key: string, value: string | number | boolean, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** New time to live, in seconds (0: never); false with "not found" when the key is absent. */
  expire(this: SharedDict, key: string, exptime: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  /** Frees up to maxCount expired entries (0: all), returns how many. */
  flush_expired(this: SharedDict, maxCount?: number): number;
  delete(this: SharedDict, key: string): void;
  get_keys(this: SharedDict, maxCount?: number): string[];
  capacity(this: SharedDict): number;
  free_space(this: SharedDict): number;
}

interface NgxShared {
  readonly fe_metrics?: SharedDict;
  readonly fe_tokens?: SharedDict;
  readonly fe_auth_neg?: SharedDict;
  readonly fe_auth?: SharedDict;
  readonly fe_ratelimit?: SharedDict;
  readonly fe_cache_gen?: SharedDict;
  readonly fe_cache_pass?: SharedDict;
  readonly fe_audit?: SharedDict;
}

interface NgxTimer {
  /** Runs `fn` every `delay` seconds in a timer (false premature at each run). */
  every(this: void, delay: number, fn: (this: void, premature: boolean) => void): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  at(this: void, delay: number, fn: (this: void, premature: boolean) => void): LuaMultiReturn<[boolean | undefined, string | undefined]>;
}

/** A cosocket (ngx.socket.tcp): methods keep self. Yields; not in header_filter, body_filter or log. */
interface TcpSocket {
  settimeouts(this: TcpSocket, connectMs: number, sendMs: number, readMs: number): void;
  connect(this: TcpSocket, host: string, port: number): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  sslhandshake(this: TcpSocket, reused: undefined, serverName: string, verify: boolean): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  send(this: TcpSocket, data: string): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** `*l` a line without its CRLF, `*a` to the end, or a byte count. */
  receive(this: TcpSocket, pattern: string | number): LuaMultiReturn<[string, undefined, undefined] | [undefined, string, string | undefined]>;
  setkeepalive(this: TcpSocket, idleMs: number, poolSize: number): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  close(this: TcpSocket): void;
}

interface NgxSocket {
  tcp(this: void): TcpSocket;
}

interface CaptureOptions {
  method?: number;
  body?: string;
  /** Values of variables in the subrequest (they must be declared somewhere with `set`). */
  vars?: Record<string, string>;
  /** Share every variable with the parent request (reads and writes). */
  share_all_vars?: boolean;
}

interface CaptureResponse {
  readonly status: number;
  readonly body: string;
  readonly header: Record<string, string | string[] | undefined>;
  /** True when the body was cut short (an upstream error mid-body). */
  readonly truncated: boolean;
}

interface NgxLocation {
  capture(this: void, uri: string, options?: CaptureOptions): CaptureResponse;
}

/** Request variables; an unset or unknown variable reads as undefined. */
/** nginx's own variables that the plugins read. */
type NginxVar = "request_id" | "request_uri" | "http_host" | "http_authorization" | "upstream_cache_status" | "body_bytes_sent" | "remote_addr" | "request";

/**
 * `ngx.var`: nginx's variables the plugins read, any request header (`http_*`), and the
 * gateway's own, declared once in core/vars.ts. Only the `set` ones may be written; a name that
 * is in none of these does not compile.
 */
type NgxVar = { readonly [K in NginxVar | import("../core/vars").FeVar]: string | undefined } & {
  [K in import("../core/vars").FeSetVar]: string | undefined;
} & { readonly [name: `http_${string}`]: string | undefined };

interface NgxConfig {
  readonly subsystem: string;
  readonly ngx_lua_version: number;
  prefix(this: void): string;
}

interface NgxApi {
  readonly OK: 0;
  readonly ERROR: -1;
  readonly HTTP_OK: 200;
  readonly HTTP_GET: number;
  readonly HTTP_POST: number;
  readonly ERR: number;
  readonly WARN: number;
  readonly NOTICE: number;
  readonly INFO: number;
  readonly DEBUG: number;
  readonly ALERT: number;
  readonly CRIT: number;

  readonly var: NgxVar;
  readonly req: NgxReq;
  readonly worker: NgxWorker;
  readonly re: NgxRe;
  readonly shared: NgxShared;
  readonly config: NgxConfig;
  readonly location: NgxLocation;
  readonly timer: NgxTimer;
  readonly socket: NgxSocket;
  /** Response headers; assigning undefined removes one. */
  readonly header: Record<string, string | string[] | undefined>;
  /** Per-request table; lives for the request, across phases. */
  ctx: Record<string, unknown>;
  status: number;

  say(this: void, ...args: (string | number)[]): NgxOk<1>;
  print(this: void, ...args: (string | number)[]): NgxOk<1>;
  exit(this: void, status: number): never;
  /** Internal redirect to `uri` (access, rewrite, content): the request goes on there; `set` variables are kept, ngx.ctx is not. */
  exec(this: void, uri: string): never;
  log(this: void, level: number, ...args: (string | number)[]): void;
  now(this: void): number;
  time(this: void): number;
  update_time(this: void): void;
  md5(this: void, s: string): string;
  encode_base64(this: void, s: string, noPadding?: boolean): string;
  decode_base64(this: void, s: string): string | undefined;
  escape_uri(this: void, s: string): string;
  decode_args(this: void, s: string, maxArgs?: number): Record<string, string | boolean | (string | boolean)[] | undefined>;
  get_phase(this: void): string;
  /** Yields the request's coroutine; only in phases that may yield (access, content, timers). */
  sleep(this: void, seconds: number): void;
  is_subrequest: boolean;
}

declare const ngx: NgxApi;

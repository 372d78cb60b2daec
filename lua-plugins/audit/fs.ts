/**
 * The few POSIX file calls the audit spool needs, through LuaJIT FFI: append-only writes in
 * one write(2) each (a batch is whole or absent after a crash of the worker), fsync, positioned
 * reads, directory listing and process liveness. Debian's nginx has no lua-filesystem for
 * LuaJIT, and Lua's io library cannot list a directory or open with O_APPEND.
 *
 * These calls block the worker: each is a single syscall on local disk (page cache), used only
 * from timers and, for the `durable` classes, once in a header filter.
 */
import * as ffi from "ffi";

ffi.cdef(`
typedef struct __dirstream FE_DIR;
struct fe_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
FE_DIR *opendir(const char *name);
struct fe_dirent *readdir(FE_DIR *dirp);
int closedir(FE_DIR *dirp);
int open(const char *pathname, int flags, int mode);
long write(int fd, const void *buf, size_t count);
long pread(int fd, void *buf, size_t count, int64_t offset);
int64_t lseek(int fd, int64_t offset, int whence);
int close(int fd);
int fsync(int fd);
int unlink(const char *pathname);
int rename(const char *oldpath, const char *newpath);
int mkdir(const char *pathname, int mode);
int kill(int pid, int sig);
`);

type CData = ffi.CData;

interface Dirent {
  readonly d_name: CData;
}

interface LibC {
  opendir(this: void, name: string): CData | undefined;
  readdir(this: void, dir: CData): Dirent | undefined;
  closedir(this: void, dir: CData): number;
  open(this: void, path: string, flags: number, mode: number): number;
  write(this: void, fd: number, buf: string, n: number): unknown;
  pread(this: void, fd: number, buf: CData, n: number, off: number): unknown;
  lseek(this: void, fd: number, off: number, whence: number): unknown;
  close(this: void, fd: number): number;
  fsync(this: void, fd: number): number;
  unlink(this: void, path: string): number;
  rename(this: void, from: string, to: string): number;
  mkdir(this: void, path: string, mode: number): number;
  kill(this: void, pid: number, sig: number): number;
}

const C = ffi.C as LibC;

/** 64-bit C results (long, int64_t) come back as cdata; every size here fits a double. */
const num = tonumber as (this: void, v: unknown) => number;

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0x40;
const O_APPEND = 0x400;
const O_CLOEXEC = 0x80000;
const SEEK_END = 2;

/** An fd open for appending (created 0640), or -1. */
export function openAppend(path: string): number {
  return C.open(path, O_WRONLY + O_CREAT + O_APPEND + O_CLOEXEC, 416);
}

export function openRead(path: string): number {
  return C.open(path, O_RDONLY + O_CLOEXEC, 0);
}

/** Writes all of `data`; false when the kernel took less (disk full) or failed. */
export function writeAll(fd: number, data: string): boolean {
  return num(C.write(fd, data, data.length)) === data.length;
}

export function sync(fd: number): boolean {
  return C.fsync(fd) === 0;
}

export function closeFd(fd: number): void {
  if (fd >= 0) C.close(fd);
}

/** Size of an open file, or -1. */
export function sizeOf(fd: number): number {
  return num(C.lseek(fd, 0, SEEK_END));
}

/** Size of a file by path, or -1 when it cannot be opened. */
export function fileSize(path: string): number {
  const fd = openRead(path);
  if (fd < 0) return -1;
  const n = sizeOf(fd);
  C.close(fd);
  return n;
}

const readBuf = ffi.typeof("char[?]");
let buf = readBuf(65536);
let bufSize = 65536;

/** Up to `n` bytes of `path` from byte `off` (0-based); "" at the end, undefined when it cannot be read. */
export function readAt(path: string, off: number, n: number): string | undefined {
  const fd = openRead(path);
  if (fd < 0) return undefined;
  if (n > bufSize) {
    buf = readBuf(n);
    bufSize = n;
  }
  const got = num(C.pread(fd, buf, n, off));
  C.close(fd);
  if (got < 0) return undefined;
  return ffi.string(buf, got);
}

/** Names in a directory (without . and ..), unsorted; empty when it cannot be read. */
export function list(dir: string): string[] {
  const out: string[] = [];
  const d = C.opendir(dir);
  if (d === undefined) return out;
  for (;;) {
    const e = C.readdir(d);
    if (e === undefined) break;
    const name = ffi.string(e.d_name);
    if (name !== "." && name !== "..") out.push(name);
  }
  C.closedir(d);
  return out;
}

export function remove(path: string): boolean {
  return C.unlink(path) === 0;
}

export function move(from: string, to: string): boolean {
  return C.rename(from, to) === 0;
}

/** mkdir -p (0750). */
export function makeDirs(path: string): void {
  let at = 1;
  for (;;) {
    const [slash] = string.find(path, "/", at + 1, true);
    C.mkdir(slash === undefined ? path : string.sub(path, 1, slash - 1), 488);
    if (slash === undefined) return;
    at = slash;
  }
}

/** Whether a process with this pid exists (signal 0: EPERM means it does, under another user). */
export function alive(pid: number): boolean {
  if (C.kill(pid, 0) === 0) return true;
  return ffi.errno() === 1;
}

/** Writes `data` to `path` through a temporary file and a rename, so a reader sees old or new, whole. */
export function replaceFile(path: string, data: string): boolean {
  const tmp = path + ".tmp";
  const fd = C.open(tmp, O_WRONLY + O_CREAT + O_CLOEXEC + 0x200, 416);
  if (fd < 0) return false;
  const ok = writeAll(fd, data);
  C.close(fd);
  return ok && move(tmp, path);
}

/** Whole file, or undefined. */
export function readAll(path: string): string | undefined {
  const n = fileSize(path);
  if (n < 0) return undefined;
  return readAt(path, 0, n);
}

/**
 * A fixed number of GETs over N keep-alive connections, each connection walking a list of
 * requests (path and headers) in turn, from its own offset, so every kind of request is
 * interleaved with the others as mixed client traffic would be. It counts, and does not retry:
 * a test that needs a reload-safe client uses ./load.ts.
 */
import http from "node:http";

export interface BurstRequest {
  /** Names the request in `byName`. @default path */
  readonly name?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface BurstResult {
  readonly total: number;
  readonly statuses: Record<string, number>;
  /** Statuses per request name, to say which kind went wrong. */
  readonly byName: Record<string, Record<string, number>>;
  readonly errors: number;
  readonly ms: number;
}

export async function burst(base: string, requests: readonly BurstRequest[], total: number, connections: number): Promise<BurstResult> {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const statuses: Record<string, number> = {};
  const byName: Record<string, Record<string, number>> = {};
  let errors = 0;
  let sent = 0;
  const started = Date.now();

  const once = (r: BurstRequest): Promise<string> =>
    new Promise((resolve) => {
      const req = http.get({ host: url.hostname, port: url.port, path: r.path, headers: { ...r.headers }, agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(String(res.statusCode ?? 0)));
        res.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
      req.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });

  const worker = async (offset: number): Promise<void> => {
    for (let i = offset; sent < total; i++) {
      sent += 1;
      const r = requests[i % requests.length]!;
      const status = await once(r);
      if (status.startsWith("error")) errors += 1;
      statuses[status] = (statuses[status] ?? 0) + 1;
      const p = (byName[r.name ?? r.path] ??= {});
      p[status] = (p[status] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, (_, c) => worker(c)));
  } finally {
    agent.destroy();
  }
  return { total: sent, statuses, byName, errors, ms: Date.now() - started };
}

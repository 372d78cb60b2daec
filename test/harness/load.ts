/**
 * A closed-loop load generator that behaves like a conforming HTTP/1.1 client: N keep-alive
 * connections, each sending the next GET as soon as the last response ends.
 *
 * Why not autocannon here: at a graceful reload, nginx 1.22 closes keep-alive connections that
 * are idle at that instant (there is no `keepalive_min_timeout` before 1.27). A GET already on
 * the wire to such a connection is reset unread, before any response byte. RFC 9110 §9.2.2
 * allows, and browsers, curl, Go and urllib3 do, one automatic retry of an idempotent request
 * in exactly that case. autocannon counts it as an error instead. This client retries once,
 * only for that case, and reports how often, so a test can bound it: at most one per
 * connection per reload, which is the idle race and nothing else.
 */
import http from "node:http";

export interface LoadResult {
  readonly total: number;
  readonly non2xx: number;
  /** Requests that failed even after the one permitted retry, or failed after response bytes. */
  readonly errors: number;
  /** Resets of a reused, idle connection before any response byte, retried once. */
  readonly retriedResets: number;
  readonly errorCodes: Record<string, number>;
  readonly statuses: Record<number, number>;
}

export async function closedLoop(url: string, connections: number, durationMs: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const deadline = Date.now() + durationMs;
  let total = 0;
  let non2xx = 0;
  let errors = 0;
  let retriedResets = 0;
  const statuses: Record<number, number> = {};

  const errorCodes: Record<string, number> = {};
  // The retry goes on a fresh connection, as clients do: another pooled one may be closing too.
  const once = (fresh = false): Promise<{ status: number } | { error: Error; reusedBeforeResponse: boolean }> =>
    new Promise((resolve) => {
      let reused = false;
      let gotResponse = false;
      const req = http.get(url, { agent: fresh ? false : agent }, (res) => {
        gotResponse = true;
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        res.on("error", (error) => resolve({ error, reusedBeforeResponse: false }));
      });
      req.on("socket", (s) => {
        // A socket that already served a request is a reused keep-alive connection.
        reused = (s as unknown as { _fe_used?: boolean })._fe_used === true;
        (s as unknown as { _fe_used?: boolean })._fe_used = true;
      });
      req.on("error", (error) => resolve({ error, reusedBeforeResponse: reused && !gotResponse }));
    });

  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      let r = await once();
      if ("error" in r && r.reusedBeforeResponse) {
        retriedResets += 1;
        r = await once(true);
      }
      total += 1;
      if ("error" in r) {
        errors += 1;
        const code = (r.error as NodeJS.ErrnoException).code ?? r.error.message;
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        continue;
      }
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status < 200 || r.status > 299) non2xx += 1;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
  return { total, non2xx, errors, errorCodes, retriedResets, statuses };
}

/**
 * http/uri under LuaJIT, against an independent TypeScript oracle for what must be refused:
 * any dot segment (raw or encoded), any encoded byte, `//`, NUL and control characters.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runLua } from "../../harness/luajit.ts";

const checkPath = async (paths: readonly string[]): Promise<(string | undefined)[]> =>
  (await runLua("http.uri", "checkPath", paths.map((p) => [p]))).map((r) => (r.ok ? (r.values[0] as string | undefined) : `raised ${r.error}`));

/**
 * The oracle: would an upstream that decodes and normalises read this path differently? A
 * trailing slash is left to fhir/classify, which refuses it as a bad path.
 */
function unsafe(path: string): boolean {
  const segs = path.endsWith("/") ? path.slice(0, -1).split("/") : path.split("/");
  const decoded = (() => {
    try {
      return decodeURIComponent(path);
    } catch {
      return undefined;
    }
  })();
  return (
    decoded === undefined ||
    decoded !== path ||
    segs.slice(1).some((s) => s === "" || s === "." || s === "..") ||
    /[\u0000-\u001f\u007f-\uffff\s"<>\\^`{|}#?[\]]/.test(path)
  );
}

describe("http.uri.checkPath", () => {
  it("refuses the attack forms, each with its reason", async () => {
    const table: [string, string | undefined][] = [
      ["/acme/fhir/Patient/1", undefined],
      ["/acme/fhir/Patient/a.b-c", undefined],
      ["/acme/fhir/Patient/$everything", undefined],
      ["/acme/fhir/../globex/fhir/Patient", "dot_segment"],
      ["/acme/fhir/Patient/..", "dot_segment"],
      ["/acme/fhir/./Patient", "dot_segment"],
      ["/acme/fhir/%2e%2e/globex", "encoded"],
      ["/acme/fhir/%2E%2E/globex", "encoded"],
      ["/acme/fhir/Patient%2f1", "encoded"],
      ["/acme/fhir/Patient%00", "encoded"],
      ["/acme//fhir/Patient", "empty_segment"],
      ["/acme/fhir/Patient\u0000", "bad_char"],
      ["/acme/fhir/Pat\u00e9ient", "bad_char"],
      ["/acme/fhir/Patient\\1", "bad_char"],
    ];
    const got = await checkPath(table.map(([p]) => p));
    table.forEach(([p, want], i) => expect(got[i], JSON.stringify(p)).toBe(want));
  });

  it("accepts exactly the paths with one reading (property, against the oracle)", async () => {
    const unit = fc.constantFrom("/", "a", "Z", "0", ".", "..", "%", "%2e", "%2E", "%2f", "%2F", "%00", "%41", "$", "-", "_", "~", "\u0000", "\t", " ", "\u00e9", ":", "@", "\\");
    const paths = fc.sample(fc.string({ unit, minLength: 1, maxLength: 12 }).map((s) => `/t${s}`), 800);
    const got = await checkPath(paths);
    paths.forEach((p, i) => {
      expect(got[i] !== undefined, `${JSON.stringify(p)} -> ${String(got[i])}`).toBe(unsafe(p));
    });
  });

  it("splits the request target at the first ?", async () => {
    const rs = await runLua("http.uri", "splitTarget", [["/a/b?x=1?y"], ["/a/b"], ["/a?"]]);
    expect(rs.map((r) => (r.ok ? r.values : r.error))).toEqual([["/a/b", "x=1?y"], ["/a/b", undefined], ["/a", ""]]);
  });
});

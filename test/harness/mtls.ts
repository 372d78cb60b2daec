/**
 * An mTLS front for the demo introspection endpoint: a test CA, a server certificate for
 * 127.0.0.1 and a client certificate for the gateway (made with node-forge), and an HTTPS
 * server that requires a client certificate from that CA and forwards to the oidc-provider.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import path from "node:path";
import forge from "node-forge";

export interface MtlsFiles {
  readonly ca: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface MtlsFront {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly files: MtlsFiles;
  close(): Promise<void>;
}

interface Issued {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

function issue(subject: string, signer: Issued | undefined, extensions: object[]): Issued {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = `0${forge.util.bytesToHex(forge.random.getBytesSync(8))}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: "commonName", value: subject }];
  cert.setSubject(attrs);
  cert.setIssuer(signer === undefined ? attrs : signer.cert.subject.attributes);
  cert.setExtensions(extensions);
  cert.sign(signer?.key ?? keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey };
}

/** A CA, a server certificate for 127.0.0.1, and a client certificate, as PEM files in `dir`. */
export function makeCertificates(dir: string): MtlsFiles & { serverCert: string; serverKey: string } {
  mkdirSync(dir, { recursive: true });
  const ca = issue("fhir-edge test CA", undefined, [{ name: "basicConstraints", cA: true }, { name: "keyUsage", keyCertSign: true, cRLSign: true }]);
  // nginx checks the name with X509_check_host, which reads DNS names: 127.0.0.1 is listed
  // as one too, beside the IP address entry other clients use.
  const server = issue("127.0.0.1", ca, [
    { name: "basicConstraints", cA: false },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [{ type: 2, value: "127.0.0.1" }, { type: 7, ip: "127.0.0.1" }] },
  ]);
  const client = issue("fhir-edge-gateway", ca, [{ name: "basicConstraints", cA: false }, { name: "extKeyUsage", clientAuth: true }]);
  const write = (name: string, pem: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, pem, { mode: 0o644 });
    return file;
  };
  return {
    ca: write("ca.pem", forge.pki.certificateToPem(ca.cert)),
    serverCert: write("server.pem", forge.pki.certificateToPem(server.cert)),
    serverKey: write("server-key.pem", forge.pki.privateKeyToPem(server.key)),
    clientCert: write("client.pem", forge.pki.certificateToPem(client.cert)),
    clientKey: write("client-key.pem", forge.pki.privateKeyToPem(client.key)),
  };
}

/** Starts the front on a free port, forwarding to `target` (http://host:port of the authz). */
export async function startMtlsFront(dir: string, target: string): Promise<MtlsFront> {
  const files = makeCertificates(dir);
  const upstream = new URL(target);
  const server = createServer(
    {
      key: readFileSync(files.serverKey),
      cert: readFileSync(files.serverCert),
      ca: readFileSync(files.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      if (!(req.socket as TLSSocket).authorized) {
        res.writeHead(401).end();
        return;
      }
      const fwd = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on("error", () => res.writeHead(502).end());
      req.pipe(fwd);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    files,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

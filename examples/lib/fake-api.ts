/**
 * A local HTTP server standing in for a third-party API (GitHub's search, NewsAPI): it answers
 * after a delay, like a real API across the internet, so the examples need no network and no key.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeApi {
  /** http://127.0.0.1:PORT */
  readonly base: string;
  /** Requests answered so far. */
  readonly requests: () => number;
  close(): Promise<void>;
}

/**
 * `answer` gets the request's URL and returns the JSON body (or undefined for a 404); `delayMs`
 * says how long each answer takes.
 */
export async function startFakeApi(answer: (url: URL, req: IncomingMessage) => unknown, delayMs: (url: URL) => number): Promise<FakeApi> {
  let requests = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    requests++;
    setTimeout(() => {
      const body = answer(url, req);
      res.statusCode = body === undefined ? 404 : 200;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(body ?? { message: "Not Found" }));
    }, delayMs(url));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive connections from fetch() would hold the server open.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** GET a JSON document, failing on a non-2xx answer. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, { signal, headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return (await res.json()) as T;
}

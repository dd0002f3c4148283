// A tiny static server for the browser test, on 127.0.0.1 only:
//   /pkg/...  -> dnr-wasm/pkg (the built package)
//   /...      -> tests/wasm/browser/site
import http from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const roots = {
  pkg: path.resolve(here, "../../../dnr-wasm/pkg"),
  site: path.join(here, "site"),
};
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

export function startServer() {
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://127.0.0.1");
      let pathname = decodeURIComponent(url.pathname);
      let root = roots.site;
      if (pathname.startsWith("/pkg/")) {
        root = roots.pkg;
        pathname = pathname.slice("/pkg".length);
      }
      if (pathname === "/") pathname = "/index.html";
      const file = path.resolve(root, "." + pathname);
      if (!file.startsWith(root + path.sep)) throw Object.assign(new Error("outside"), { code: "ENOENT" });
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": types[path.extname(file)] ?? "application/octet-stream",
        "cache-control": "no-store",
      });
      res.end(body);
    } catch (error) {
      res.writeHead(error.code === "ENOENT" ? 404 : 500, { "content-type": "text/plain" });
      res.end(String(error.message));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

// `node server.mjs` serves until stopped, for trying the page by hand.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await startServer();
  console.log(`serving ${url}`);
}

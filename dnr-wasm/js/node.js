// Node entry (ES module; `require()` works too on Node >= 20.19): reads and
// instantiates the WebAssembly module synchronously.
import { readFileSync } from "node:fs";
import { initSync } from "./dnr_wasm.js";

initSync({ module: readFileSync(new URL("./dnr_wasm_bg.wasm", import.meta.url)) });

export * from "./dnr_wasm.js";

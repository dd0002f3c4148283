// Browser entry (ES module): instantiates the WebAssembly module once, then
// exposes the same API as in Node. Works on the main thread and in Workers.
import init from "./dnr_wasm.js";

await init({ module_or_path: new URL("./dnr_wasm_bg.wasm", import.meta.url) });

export * from "./dnr_wasm.js";

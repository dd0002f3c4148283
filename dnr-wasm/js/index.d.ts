// Types of the package's main entry (browser and Node alike).
export * from "./dnr_wasm.js";

// Lets Node 20 load @actions/workflow-parser, whose compiled code imports its JSON schema
// without `with { type: "json" }` (Node 22 accepts that; 20 refuses it). Preload it:
//   node --import ./json-import.mjs parse-workflows.mjs ...
// On the main thread it registers itself as a module hook; on the hooks thread it serves
// `load`, turning a .json module into an ES module whose default export is the parsed file.
import { register } from "node:module";
import { readFile } from "node:fs/promises";
import { isMainThread } from "node:worker_threads";

export async function load(url, context, nextLoad) {
  if (url.startsWith("file:") && url.endsWith(".json")) {
    const text = await readFile(new URL(url), "utf8");
    return { format: "module", shortCircuit: true, source: `export default ${text};` };
  }
  return nextLoad(url, context);
}

if (isMainThread) {
  register(import.meta.url);
}

// GitHub's own workflow parser over workflow files: prints one line per error and exits 1 when
// there is any. Usage: node --import ./json-import.mjs parse-workflows.mjs FILE...
import { readFileSync } from "node:fs";
import { parseWorkflow, NoOperationTraceWriter, convertWorkflowTemplate } from "@actions/workflow-parser";

let failed = false;
for (const name of process.argv.slice(2)) {
  const result = parseWorkflow({ name, content: readFileSync(name, "utf8") }, new NoOperationTraceWriter());
  const errors = [...result.context.errors.getErrors()];
  if (result.value !== undefined && errors.length === 0) {
    const template = await convertWorkflowTemplate(result.context, result.value);
    errors.push(...(template.errors ?? []));
  }
  for (const error of errors) {
    failed = true;
    console.log(`${name}: ${error.message ?? error.Message ?? JSON.stringify(error)}`);
  }
}
process.exit(failed ? 1 : 0);

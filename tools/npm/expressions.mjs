// GitHub's expression evaluator (@actions/expressions) as a small server for the local workflow
// runner (scripts/toolkit/workflow/): one JSON request per stdin line, one JSON reply per line.
//   request: {"context": {github, env, vars, secrets, inputs, needs, steps, job, jobs, runner,
//             matrix, strategy}, "status": {"success": b, "failure": b, "cancelled": b},
//             "items": [{"kind": "if" | "template", "text": "..."}]}
//   reply:   {"results": [{"value": <JSON>, "text": "<as interpolated>"} | {"error": "..."}]}
// `if` follows GitHub: `${{ }}` around the whole condition is optional, and a condition that
// calls none of success(), failure(), cancelled(), always() is read as `success() && (...)`.
// A template is a string whose `${{ expr }}` parts are replaced by the value's string form;
// a template that is one expression alone also gives the value itself (typed inputs).
import { createInterface } from "node:readline";
import { Evaluator, Lexer, Parser, data } from "@actions/expressions";
import { truthy } from "@actions/expressions/result";

const STATUS = ["success", "failure", "cancelled", "always"];
const CONTEXTS = ["github", "env", "vars", "secrets", "inputs", "needs", "steps", "job", "jobs",
  "runner", "matrix", "strategy"];

function functions(status) {
  const fn = (name, value) => [name, { name, minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(value) }];
  return new Map([
    fn("success", status.success), fn("failure", status.failure),
    fn("cancelled", status.cancelled), fn("always", true),
    ["hashfiles", { name: "hashFiles", minArgs: 1, maxArgs: 255,
      call: () => { throw new Error("hashFiles() is not available in the local runner"); } }],
  ]);
}

const INFOS = [...STATUS.map((name) => ({ name, minArgs: 0, maxArgs: 0 })),
  { name: "hashFiles", minArgs: 1, maxArgs: 255 }];

function parse(text) {
  const lexed = new Lexer(text).lex();
  return { tokens: lexed.tokens, expr: new Parser(lexed.tokens, CONTEXTS, INFOS).parse() };
}

function evaluate(text, context, status) {
  return new Evaluator(parse(text).expr, context, functions(status)).evaluate();
}

function callsStatus(tokens) {
  return tokens.some((t, i) => STATUS.includes(String(t.lexeme).toLowerCase()) &&
    tokens[i + 1] && tokens[i + 1].lexeme === "(");
}

function plain(value) {
  return JSON.parse(JSON.stringify(value, data.replacer));
}

function condition(text, context, status) {
  let body = text.trim();
  const whole = /^\$\{\{([\s\S]*)\}\}$/.exec(body);
  if (whole && !whole[1].includes("}}")) body = whole[1];
  if (!body.trim()) body = "success()";
  if (!callsStatus(parse(body).tokens)) body = `success() && (${body})`;
  const value = truthy(evaluate(body, context, status));
  return { value, text: String(value) };
}

function template(text, context, status) {
  const parts = [];
  let last = 0;
  let single;
  const pattern = /\$\{\{([\s\S]*?)\}\}/g;
  for (const match of text.matchAll(pattern)) {
    const value = evaluate(match[1], context, status);
    parts.push(text.slice(last, match.index), value.coerceString());
    last = match.index + match[0].length;
    if (match.index === 0 && last === text.length) single = plain(value);
  }
  parts.push(text.slice(last));
  const joined = parts.join("");
  return { value: single === undefined ? joined : single, text: joined };
}

const lines = createInterface({ input: process.stdin, terminal: false });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  const context = JSON.parse(JSON.stringify(request.context), data.reviver);
  const status = request.status;
  const results = request.items.map((item) => {
    try {
      return item.kind === "if" ? condition(item.text, context, status) : template(item.text, context, status);
    } catch (error) {
      return { error: `${item.text.trim()}: ${error.message}` };
    }
  });
  process.stdout.write(JSON.stringify({ results }) + "\n");
}

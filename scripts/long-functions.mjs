#!/usr/bin/env node
// Lists functions over 100 lines and source files over 500 lines under src/ (issue 15's size
// rules) and exits non-zero when any exist. `npm run check` runs it.
// Usage: node scripts/long-functions.mjs [dir…]   (default: src)
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const MAX_FUNCTION_LINES = 100;
const MAX_FILE_LINES = 500;

function* sourceFiles(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    // Generated files (the API schema) are data, not code anyone reads.
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('.generated.ts')) yield p;
  }
}

/** A readable name for a function-like node: `Class.method`, `name`, or `<arrow>` with its line. */
function nameOf(node, sf) {
  const own = node.name && ts.isIdentifier(node.name) ? node.name.text : node.name?.getText(sf);
  let n = own;
  if (!n && ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name)) n = node.parent.name.text;
  if (!n && ts.isPropertyAssignment(node.parent)) n = node.parent.name.getText(sf);
  if (!n && ts.isPropertyDeclaration(node.parent)) n = node.parent.name.getText(sf);
  if (!n && ts.isConstructorDeclaration(node)) n = 'constructor';
  n ??= '<anonymous>';
  const cls = ts.findAncestor(node.parent, ts.isClassLike);
  return cls?.name ? `${cls.name.text}.${n}` : n;
}

const findings = [];
for (const root of process.argv.slice(2).length ? process.argv.slice(2) : ['src']) {
  for (const file of sourceFiles(root)) {
    const text = fs.readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const fileLines = sf.getLineAndCharacterOfPosition(text.length).line + (text.endsWith('\n') ? 0 : 1);
    if (fileLines > MAX_FILE_LINES) findings.push(`${file}: file has ${fileLines} lines (max ${MAX_FILE_LINES})`);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.end).line;
        const lines = end - start + 1;
        if (lines > MAX_FUNCTION_LINES) {
          findings.push(`${file}:${start + 1}: ${nameOf(node, sf)} has ${lines} lines (max ${MAX_FUNCTION_LINES})`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
}
for (const f of findings) console.log(f);
if (findings.length) {
  console.log(`${findings.length} over the limits`);
  process.exit(1);
}
console.log(`no function over ${MAX_FUNCTION_LINES} lines, no file over ${MAX_FILE_LINES} lines`);

import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const SRC = path.resolve(__dirname, '..');

/**
 * Modules by path relative to `src`, each with the `src` modules it imports
 * (static, type-only, re-exports and dynamic `import()` alike).
 */
function importGraph(): Map<string, string[]> {
  const files = fs
    .readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter(f => /\.tsx?$/.test(f) && !f.split(path.sep).includes('__tests__'))
    .map(f => f.split(path.sep).join('/'));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(SRC, file), 'utf8');
    const { importedFiles } = ts.preProcessFile(text, true, true);
    const targets = importedFiles
      .map(i => i.fileName)
      .filter(name => name.startsWith('.'))
      .map(name => resolve(file, name, files))
      .filter((f): f is string => f !== null);
    graph.set(file, targets);
  }
  return graph;
}

/**
 * The module of `src` that `specifier`, imported by `from`, names.
 */
function resolve(from: string, specifier: string, files: string[]) {
  const base = path.posix.join(path.posix.dirname(from), specifier);
  const candidates = ['', '.ts', '.tsx', '.d.ts', '/index.ts', '/index.tsx'];
  return candidates.map(c => base + c).find(f => files.includes(f)) ?? null;
}

/**
 * Every import cycle of `graph`, each once, as `a -> b -> a`.
 */
export function importCycles(graph: Map<string, string[]>): string[] {
  const cycles = new Map<string, string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (module: string): void => {
    if (done.has(module)) {
      return;
    }
    const open = stack.indexOf(module);
    if (open >= 0) {
      const cycle = stack.slice(open);
      cycles.set([...cycle].sort().join(' '), [...cycle, module].join(' -> '));
      return;
    }
    stack.push(module);
    for (const target of graph.get(module) ?? []) {
      visit(target);
    }
    stack.pop();
    done.add(module);
  };
  for (const module of graph.keys()) {
    visit(module);
  }
  return [...cycles.values()];
}

describe('imports in src', () => {
  it('have no cycle', () => {
    const graph = importGraph();
    expect(graph.get('tokens.ts')).toBeDefined();
    expect(importCycles(graph)).toEqual([]);
  });

  it('are checked for cycles, type-only ones included', () => {
    const graph = new Map([
      ['tokens.ts', ['model.ts']],
      ['model.ts', ['api.ts', 'tokens.ts']],
      ['api.ts', ['tokens.ts']],
      ['index.ts', ['model.ts']]
    ]);
    expect(importCycles(graph)).toEqual([
      'tokens.ts -> model.ts -> api.ts -> tokens.ts',
      'tokens.ts -> model.ts -> tokens.ts'
    ]);
    const typeOnly = "export type M = import('./model').SelaModel;";
    const { importedFiles } = ts.preProcessFile(typeOnly, true, true);
    expect(importedFiles.map(i => i.fileName)).toEqual(['./model']);
  });
});

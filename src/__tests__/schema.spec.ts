import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { STAGES, Stage } from '../tokens';

const ROOT = path.resolve(__dirname, '..', '..');
const SCHEMA_TS = path.join('src', 'schema.ts');

/**
 * True when `A` and `B` are the same type; a `false` here fails type-checking.
 */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2
    ? true
    : false;

/**
 * `jlpm generate:types` run again: openapi-typescript, then prettier.
 */
function generatedTypes(): string {
  const bin = (pkg: string, file: string): string =>
    path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
  const raw = execFileSync(
    process.execPath,
    [
      bin('openapi-typescript', 'bin/cli.js'),
      'sela_jupyter/server/openapi.yaml'
    ],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }
  );
  return execFileSync(
    process.execPath,
    [bin('prettier', 'bin/prettier.cjs'), '--stdin-filepath', SCHEMA_TS],
    { cwd: ROOT, encoding: 'utf8', input: raw }
  );
}

describe('src/schema.ts', () => {
  it('is generated from the current openapi.yaml and events/run.yaml', () => {
    const committed = fs.readFileSync(path.join(ROOT, SCHEMA_TS), 'utf8');
    if (generatedTypes() !== committed) {
      throw new Error(
        'src/schema.ts is out of date with sela_jupyter/server/openapi.yaml ' +
          'or events/run.yaml: run `jlpm generate:types`'
      );
    }
  }, 60_000);

  it("lists the schema's stages in STAGES", () => {
    const same: Equal<(typeof STAGES)[number], Stage> = true;
    expect(same).toBe(true);
  });
});

// The committed codec must be exactly what the generator produces from spec/: regenerate in memory
// and compare byte for byte, so that a hand edit of the generated file or a spec change without
// `npm run codegen` fails here.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate, OUTPUT_FILE } from '../../spec/generate.js';

describe('generated codec', () => {
  it('OUTPUT_FILE is src/protocol/generated/amqp.ts', () => {
    expect(OUTPUT_FILE.replace(/\\/g, '/')).toMatch(/\/src\/protocol\/generated\/amqp\.ts$/);
  });

  it('generate() equals the committed file byte for byte', () => {
    const committed = readFileSync(OUTPUT_FILE);
    const generated = Buffer.from(generate(), 'utf8');
    // Compare as text first for a readable diff, then as bytes (line endings, BOM, trailing newline).
    expect(generated.toString('utf8')).toBe(committed.toString('utf8'));
    expect(generated.equals(committed)).toBe(true);
  });

  it('generate() is deterministic', () => {
    expect(generate()).toBe(generate());
  });
});

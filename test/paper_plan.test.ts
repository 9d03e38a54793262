// The paper plan's engine: steps run once, reruns reuse records whose key is unchanged, a change
// of parameters recomputes the step and what reads it, records of another model are refused,
// and a SIGKILL between steps (the test hook) loses nothing that was finished.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Plan, type PlanEvent, type Step } from '../src/paper/plan.ts';
import { ProvenanceError } from '../src/errors.ts';
import { REPO } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-plan-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const model = { name: 'm', fingerprint: 'f1' };

function steps(calls: string[], p: { a?: number; c?: number } = {}): Step[] {
  const est = { seconds: 1, bytes: 10 };
  return [
    { id: 'a', title: 'A', section: 's', params: { a: p.a ?? 1 }, estimate: est, run: async (ctx) => (calls.push('a'), ctx.progress(1, 2), ctx.progress(2, 2), { x: Float32Array.from([1, 2]) }) },
    { id: 'b', title: 'B', section: 's', deps: ['a'], params: {}, estimate: { seconds: 3, bytes: 0 }, run: async (_c, inp) => (calls.push('b'), { sum: (inp.a as { x: number[] }).x.reduce((u, v) => u + v, 0) }) },
    { id: 'c:1', title: 'C', section: 't', params: { c: p.c ?? 0 }, estimate: est, run: async () => (calls.push('c'), 7) },
  ];
}

describe('paper plan engine', () => {
  it('runs each step once; a rerun reads every record back as the first run returned it', async () => {
    const work = join(tmp, 'w1');
    const calls: string[] = [];
    const events: PlanEvent[] = [];
    const first = await new Plan(work, model, steps(calls)).run((e) => events.push(e));
    assert.deepEqual(calls, ['a', 'b', 'c']);
    assert.deepEqual(first, { a: { x: [1, 2] }, b: { sum: 3 }, 'c:1': 7 });
    // One overall fraction, increasing, weighted by the estimates (1 + 3 + 1 seconds).
    const overall = events.filter((e) => e.type !== 'start').map((e) => (e as { overall: number }).overall);
    assert.deepEqual(overall, [0.1, 0.2, 0.2, 0.8, 1]);
    const plan = new Plan(work, model, steps(calls));
    assert.deepEqual(plan.status().map((s) => s.cached), [true, true, true]);
    assert.deepEqual(await plan.run(), first);
    assert.deepEqual(calls, ['a', 'b', 'c']);
  });

  it('recomputes a step whose parameters changed, and the steps that read it', async () => {
    const work = join(tmp, 'w2');
    const calls: string[] = [];
    await new Plan(work, model, steps(calls)).run();
    calls.length = 0;
    await new Plan(work, model, steps(calls, { a: 2 })).run();
    assert.deepEqual(calls, ['a', 'b']);
    calls.length = 0;
    await new Plan(work, model, steps(calls, { a: 2, c: 1 })).run();
    assert.deepEqual(calls, ['c']);
  });

  it('recomputes everything when the results version changes', async () => {
    const work = join(tmp, 'w2v');
    const calls: string[] = [];
    await new Plan(work, model, steps(calls), '1').run();
    await new Plan(work, model, steps(calls), '1').run();
    await new Plan(work, model, steps(calls), '2').run();
    assert.deepEqual(calls, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('recomputes a step whose files are gone', async () => {
    const work = join(tmp, 'w3');
    const calls: string[] = [];
    const withFile = (): Step[] => [
      { id: 'f', title: 'F', section: 's', params: {}, estimate: { seconds: 1, bytes: 1 }, files: (r) => [(r as { file: string }).file], run: async (ctx) => (calls.push('f'), writeFileSync(join(ctx.work, 'out.bin'), 'x'), { file: 'out.bin' }) },
    ];
    await new Plan(work, model, withFile()).run();
    rmSync(join(work, 'out.bin'));
    await new Plan(work, model, withFile()).run();
    assert.deepEqual(calls, ['f', 'f']);
  });

  it('refuses a work folder or a record made by another model, naming both', async () => {
    const work = join(tmp, 'w4');
    await new Plan(work, model, steps([])).run();
    const other = { name: 'other', fingerprint: 'f2' };
    await assert.rejects(new Plan(work, other, steps([])).run(), (e: Error) => e instanceof ProvenanceError && /'m' \(fingerprint f1\).*'other' \(fingerprint f2\)/.test(e.message));
    // A step made by a second model (e.g. the correlated toy model) is checked against that model.
    const s2 = steps([]).map((s) => (s.id === 'c:1' ? { ...s, model: other } : s));
    assert.throws(() => new Plan(work, model, s2).status(), ProvenanceError);
  });

  it('rejects steps that read a later step or repeat an id', () => {
    const s = steps([]);
    assert.throws(() => new Plan(join(tmp, 'w5'), model, [s[1], s[0]]), /reads 'a', which does not come before it/);
    assert.throws(() => new Plan(join(tmp, 'w5'), model, [s[0], s[0]]), /appears twice/);
  });

  it('a SIGKILL after a step (test hook) keeps every finished step; the rerun does only the rest', () => {
    const work = join(tmp, 'w6');
    const script = join(tmp, 'run_plan.ts');
    writeFileSync(
      script,
      `import { Plan } from ${JSON.stringify(join(REPO, 'src/paper/plan.ts'))};
       const est = { seconds: 1, bytes: 0 };
       const mk = (id: string) => ({ id, title: id, section: 's', params: {}, estimate: est, run: async () => (process.stdout.write(id + ' '), id) });
       new Plan(${JSON.stringify(work)}, { name: 'm', fingerprint: 'f' }, [mk('a'), mk('b'), mk('c')]).run().then(() => process.stdout.write('done'));`,
    );
    const run = (env: Record<string, string> = {}) => spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8' });
    const killed = run({ CLIPLENS_TEST_PAPER_KILL: 'after:b' });
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(killed.stdout.trim(), 'a b');
    assert.ok(existsSync(join(work, 'steps', 'b.json')));
    const again = run();
    assert.equal(again.status, 0);
    assert.equal(again.stdout.trim(), 'c done');
  });
});

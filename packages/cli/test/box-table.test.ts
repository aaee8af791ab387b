/** The box's live table: columns as wide as their content, and a legend for what the arrows mean. */
import type { NodeViewMessage } from '@magrathea/common';
import { BOX_LEGEND, liveTable } from '../src/commands/box';

const node = (name: string, cells: Record<string, [string, string[], string]>): NodeViewMessage =>
  ({
    name,
    reachable: true,
    vnodes: Object.entries(cells).map(([domain, [state, jobs, magrathea]]) => ({
      domain,
      magrathea,
      detail: { state, jobs: jobs.map((id) => ({ id })) },
    })),
  }) as unknown as NodeViewMessage;

const strip = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

test('every column is as wide as its widest cell, no wider', () => {
  const view = new Map([
    [
      'node1',
      node('node1', {
        meta: ['preempted', ['100.pbs'], 'none'],
        egee: ['occupied', [], 'none'],
        priv: ['running-priority', ['200.pbs'], 'priority'],
      }),
    ],
    [
      'node2',
      node('node2', { meta: ['free', [], 'normal'], egee: ['free', [], 'normal'], priv: ['free', [], 'priority'] }),
    ],
  ]);
  const lines = liveTable(view, new Set(['node1/meta'])).map(strip);
  expect(lines).toEqual([
    'NODE   META                       EGEE            PRIV',
    'node1  preempted [100.pbs] →none  occupied →none  running-priority [200.pbs] →priority',
    'node2  free →normal               free →normal    free →priority',
  ]);
});

test('the legend says what →normal, →priority and →none mean', () => {
  const text = BOX_LEGEND.join('\n');
  for (const v of ['→normal', '→priority', '→none', 'occupied-would-preempt', 'preempted']) expect(text).toContain(v);
});

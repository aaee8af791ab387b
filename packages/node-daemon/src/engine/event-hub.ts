/** Fans committed changes out to watchers and keeps a backlog so a watcher can resume. */
import type { NodeEventInput } from '@magrathea/common';

/** Told of every committed change. */
export type NodeEventListener = (event: NodeEventInput) => void;

export class EventHub {
  private readonly backlog: NodeEventInput[] = [];
  private readonly listeners = new Set<NodeEventListener>();

  constructor(private readonly capacity = 4096) {}

  publish(event: NodeEventInput): void {
    this.backlog.push(event);
    if (this.backlog.length > this.capacity) this.backlog.shift();
    for (const l of this.listeners) l(event);
  }

  subscribe(listener: NodeEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /**
   * The events after `generation`, or null when they cannot all be replayed (too old, or a
   * generation from the future, e.g. a wiped state directory): the watcher then gets a snapshot.
   */
  since(generation: number, current: number): NodeEventInput[] | null {
    if (generation === current) return [];
    if (generation > current) return null;
    const first = this.backlog[0];
    if (!first || Number(first.generation) > generation + 1) return null;
    return this.backlog.filter((e) => Number(e.generation) > generation);
  }
}

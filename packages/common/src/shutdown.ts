/**
 * Shutdown helpers shared by magrathead and magrathea-filter: close a server gracefully and
 * force it after a grace time; run the stop steps of a component graph in order, each in
 * try/catch, and aggregate an exit code.
 */
import type * as http from 'node:http';
import type * as grpc from '@grpc/grpc-js';

/**
 * Starts a graceful close (`graceful` calls `done` when it is complete) and forces it after
 * `graceMs`. Resolves once the close completed or was forced.
 */
export function closeWithGrace(
  graceful: (done: () => void) => void,
  force: () => void,
  graceMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      force();
      resolve();
    }, graceMs);
    timer.unref();
    graceful(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Stops accepting, closes idle keep-alive connections, and cuts the others after `graceMs`. */
export function closeHttpServer(server: http.Server, graceMs: number): Promise<void> {
  return closeWithGrace(
    (done) => {
      server.close(() => done());
      server.closeIdleConnections();
    },
    () => server.closeAllConnections(),
    graceMs,
  );
}

/** `tryShutdown` (calls in flight finish), then `forceShutdown` after `graceMs`. */
export function shutdownGrpcServer(server: grpc.Server, graceMs: number): Promise<void> {
  return closeWithGrace(
    (done) => server.tryShutdown(() => done()),
    () => server.forceShutdown(),
    graceMs,
  );
}

/** Resolves when `p` settles or after `ms`, whichever comes first (never rejects). */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  const settled = p.then(
    () => undefined,
    () => undefined,
  );
  await Promise.race([settled, timeout]);
  clearTimeout(timer);
}

/** One step of an ordered stop. */
export interface StopStep {
  /** Component name, logged when its stop fails. */
  readonly name: string;
  /** Stops the component; a returned promise is awaited. */
  readonly stop: () => unknown;
}

/** The part of a logger a stop sequence needs (a pino Logger fits). */
export interface StopLogger {
  error(fields: object, message: string): void;
}

/**
 * Runs the steps in order, each in try/catch (a failing step does not keep the later ones
 * from running). Returns the exit code: 0, or 1 when a step failed (each failure is logged).
 */
export async function stopInOrder(steps: readonly StopStep[], log: StopLogger): Promise<number> {
  let code = 0;
  for (const s of steps) {
    try {
      await s.stop();
    } catch (err) {
      code = 1;
      log.error({ err, component: s.name }, 'component failed to stop');
    }
  }
  return code;
}

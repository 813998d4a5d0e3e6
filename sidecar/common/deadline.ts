// Bounded waits: a shutdown must end even when a part of it hangs (a stuck disk, a lost peer).

/** Resolves with 'done', the error the work failed with, or 'timeout' after `ms`. */
export function withDeadline(work: Promise<unknown>, ms: number): Promise<'done' | 'timeout' | Error> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve('done');
      },
      (err: unknown) => {
        clearTimeout(timer);
        resolve(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

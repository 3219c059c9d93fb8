/**
 * Runs async jobs one at a time, in the order they were queued. A job's failure is its
 * caller's (the returned promise rejects) and never stops the jobs queued after it.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Settles (never rejects) once every job queued so far has finished. */
  async idle(): Promise<void> {
    await this.tail;
  }
}

/**
 * One `SerialQueue` per key (a container ID, say): jobs on the same key run one at a time,
 * jobs on different keys run side by side. A key's entry goes once its last job is done.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(job);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    // tail never rejects; the catch keeps the lint's promise-handling rule exact.
    tail
      .then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  /** Whether a job on `key` is queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Settles (never rejects) once every job queued so far, on any key, has finished. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

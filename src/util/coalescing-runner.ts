/**
 * Runs one async pass at a time: a kick during a pass asks for exactly one more pass after it,
 * and every caller's promise settles only after a pass that began after its kick.
 */
export class CoalescingRunner {
  private running?: Promise<void>;
  private dirty = false;

  constructor(
    /** One pass; its errors are its own to handle (a throw ends the current run of passes). */
    private readonly pass: () => Promise<void>,
    private readonly stopped: () => boolean = () => false,
  ) {}

  /** Settles when no pass runs (at once if none does). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  kick(): Promise<void> {
    if (this.running) {
      this.dirty = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.dirty = false;
          await this.pass();
        } while (this.dirty && !this.stopped());
      } finally {
        // In the same step as the last look at `dirty`: clearing it in a later .finally() left a
        // few microtasks in which a kick (a container's start hook) joined a run that was over.
        this.running = undefined;
      }
    })();
    return this.running;
  }
}

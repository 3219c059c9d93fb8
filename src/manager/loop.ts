import type { Logger } from '../util/log.js';
import { LeaderLost, VersionConflict, type Store, type StoreEvent } from './store/store.js';

/**
 * The shape every leader loop shares (swarmkit style): run() subscribes to the store and
 * reacts to events, stop() ends it. Events only mark work; the work itself runs in one
 * serialized pass (`tick`), debounced, so a burst of events costs one pass and one batch
 * of writes. A pass that loses a version race is simply run again.
 */
export abstract class StoreLoop {
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private firstKick = 0;
  private pass?: Promise<void>;
  private again = false;
  protected stopped = true;
  private passing = false;

  constructor(
    protected readonly store: Store,
    protected readonly log: Logger,
    /** Wait this long after an event for more events before a pass. */
    private readonly debounceMs = 0,
    /** ...but never longer than this after the first pending event. */
    private readonly maxDelayMs = 1000,
  ) {}

  run(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.store.watch((events) => {
      if (this.stopped) return;
      try {
        if (this.observe(events)) this.kick();
      } catch (e) {
        // Never let one loop break the store's watch for everyone else.
        this.log.error({ err: e }, 'loop could not take events; running a full pass');
        this.kick();
      }
    });
    this.init();
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    this.wakeAt = Infinity;
    await this.pass?.catch(() => undefined);
    this.onStop();
  }

  /** Resolves when no pass is running or scheduled (tests use it to wait for quiescence). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.pass) await this.pass.catch(() => undefined);
      else if (this.timer) await new Promise((r) => setTimeout(r, Math.max(1, this.timerAt - Date.now())));
      else return;
    }
  }

  /** Called once on run(), before the first pass. */
  protected init(): void {}
  protected onStop(): void {}
  /** Sees every event batch; returns true when a pass is needed. */
  protected abstract observe(events: StoreEvent[]): boolean;
  protected abstract tick(): Promise<void>;

  /** Schedules a pass `delayMs` from now (or the loop's debounce). */
  protected kick(delayMs = this.debounceMs): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.pass || this.passing) {
      this.again = true;
      return;
    }
    if (!this.timer) this.firstKick = now;
    // Debounce, but never push a pass further than maxDelay after the first kick.
    const at = Math.min(now + delayMs, this.firstKick + this.maxDelayMs);
    if (this.timer && at >= this.timerAt && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.startPass(), Math.max(0, at - now));
  }

  /** Schedules a pass at an absolute time (restart delays, update delays); the earliest wins. */
  protected kickAt(ms: number): void {
    if (this.stopped || (this.wake && this.wakeAt <= ms)) return;
    if (this.wake) clearTimeout(this.wake);
    this.wakeAt = ms;
    this.wake = setTimeout(
      () => {
        this.wake = undefined;
        this.wakeAt = Infinity;
        this.kick(0);
      },
      Math.max(0, ms - Date.now()),
    );
  }
  private wake?: NodeJS.Timeout;
  private wakeAt = Infinity;

  private startPass(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    // Set before tick() starts: its synchronous part runs before `this.pass` is assigned, and
    // a kick() from there must not start a second pass alongside this one.
    this.passing = true;
    this.pass = (async () => {
      const t0 = performance.now();
      try {
        await this.tick();
        this.log.debug({ ms: Math.round(performance.now() - t0) }, 'pass');
      } catch (e) {
        if (e instanceof VersionConflict) this.again = true;
        else if (e instanceof LeaderLost) this.log.warn('lost leadership; write refused');
        else this.log.error({ err: e }, 'loop pass failed');
      }
    })().finally(() => {
      this.passing = false;
      this.pass = undefined;
      if (this.again) {
        this.again = false;
        this.kick(0);
      }
    });
  }

  /**
   * Writes a pass's changes, fenced. The store splits them into transactions of its size and
   * sends several at once; a failure leaves the earlier ones written (the next pass sees them).
   */
  protected async commitAll(changes: Parameters<Store['commit']>[0]): Promise<void> {
    const t0 = performance.now();
    await this.store.commit(changes, { fenced: true });
    this.log.debug({ writes: changes.length, ms: Math.round(performance.now() - t0) }, 'committed');
  }
}

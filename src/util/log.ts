import { pino, type Logger } from 'pino';

export type { Logger };

/** One logger per daemon, written to stderr so stdout stays free for command output. */
export function createLogger(name: string, level = process.env.SHOAL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level }, pino.destination(2));
}

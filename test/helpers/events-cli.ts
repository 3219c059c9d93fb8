/**
 * `docker events --since S --until U [--filter F]... [--format FMT]`: a bounded listing, which
 * returns once `until` (a time just past the test's last action) is reached.
 */
export function eventsBetween(
  since: number | string,
  until: number | string,
  filters: string[],
  format?: string,
): string[] {
  return [
    'events',
    '--since',
    String(since),
    '--until',
    String(until),
    ...filters.flatMap((f) => ['--filter', f]),
    ...(format === undefined ? [] : ['--format', format]),
  ];
}

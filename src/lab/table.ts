/**
 * Left-aligned columns separated by three spaces, as docker-machine's tabwriter prints them;
 * the last column is not padded so lines carry no trailing blanks.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return (
    all
      .map((r) =>
        headers
          .map((_, c) => (c === headers.length - 1 ? (r[c] ?? '') : (r[c] ?? '').padEnd(widths[c] + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

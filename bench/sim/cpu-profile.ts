/**
 * Preload (`--import`) that records a CPU profile of the whole process and writes it to
 * $SHOAL_BENCH_PROFILE/<pid>.cpuprofile on exit (node refuses --cpu-prof in NODE_OPTIONS,
 * and shoald is started by the test helpers, not by us). Open it in Chrome DevTools.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import v8 from 'node:v8';

const dir = process.env.SHOAL_BENCH_PROFILE;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // Where the memory went at the peak: V8's spaces when the RSS was highest (written next to the profile).
  let peak: { rss: number; spaces: Record<string, number>; external: number } | undefined;
  const mib = (b: number) => Math.round(b / 2 ** 20);
  setInterval(() => {
    const m = process.memoryUsage();
    if (peak && m.rss <= peak.rss * 2 ** 20) return;
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, mib(s.space_used_size)]));
    peak = { rss: mib(m.rss), spaces, external: mib(m.external + m.arrayBuffers) };
  }, 500).unref();
  // SIGUSR2: the profile so far, written now (a bench marks its phases; the lab ends shoald with SIGKILL).
  let part = 0;
  process.on('SIGUSR2', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err)
        fs.writeFileSync(
          path.join(dir, `${path.basename(process.argv[1] ?? 'node')}-${process.pid}-part${++part}.cpuprofile`),
          JSON.stringify(res.profile),
        );
      session.post('Profiler.start');
    });
  });
  // The in-process inspector answers synchronously, so this works inside 'exit'.
  process.on('exit', () => {
    if (peak)
      fs.writeFileSync(
        path.join(dir, `${path.basename(process.argv[1] ?? 'node')}-${process.pid}.heap.json`),
        JSON.stringify(peak),
      );
    session.post('Profiler.stop', (err, res) => {
      if (!err)
        fs.writeFileSync(
          path.join(dir, `${path.basename(process.argv[1] ?? 'node')}-${process.pid}.cpuprofile`),
          JSON.stringify(res.profile),
        );
    });
  });
}

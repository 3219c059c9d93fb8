/**
 * Preload (`--import`) that records a CPU profile of the whole process and writes it to
 * $SHOAL_BENCH_PROFILE/<pid>.cpuprofile on exit (node refuses --cpu-prof in NODE_OPTIONS,
 * and shoald is started by the test helpers, not by us). Open it in Chrome DevTools.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.SHOAL_BENCH_PROFILE;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // The in-process inspector answers synchronously, so this works inside 'exit'.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err)
        fs.writeFileSync(
          path.join(dir, `${path.basename(process.argv[1] ?? 'node')}-${process.pid}.cpuprofile`),
          JSON.stringify(res.profile),
        );
    });
  });
}

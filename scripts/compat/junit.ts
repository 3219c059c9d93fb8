/** One test's outcome from pytest's JUnit XML (`--junitxml`). */
export interface CaseResult {
  /** pytest node id: `tests/integration/<file>.py::<Class>::<test>`. */
  id: string;
  outcome: 'passed' | 'failed' | 'skipped';
  /** The first line of the failure or skip message. */
  message: string;
}

const XML_ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&amp;': '&' };

function unescapeXml(s: string): string {
  return s
    .replace(/&(lt|gt|quot|apos|amp);/g, (m) => XML_ENTITIES[m] ?? m)
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)));
}

function attr(tag: string, name: string): string {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? unescapeXml(m[1]) : '';
}

/**
 * The test cases of one pytest JUnit report. pytest writes a flat, regular XML (one <testcase>
 * per test, with an optional <failure>/<error>/<skipped> child), so a scan of the tags is enough.
 */
export function parseJunit(xml: string): CaseResult[] {
  const cases: CaseResult[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const head = m[1];
    const body = m[3] ?? '';
    // classname is tests.integration.api_network_test.TestNetworks
    const parts = attr(head, 'classname').split('.');
    const cls = parts.pop() ?? '';
    const id = `${parts.join('/')}.py::${cls}::${attr(head, 'name')}`;
    const bad = /<(failure|error)\b([^>]*)/.exec(body);
    const skip = /<skipped\b([^>]*)/.exec(body);
    if (bad) cases.push({ id, outcome: 'failed', message: attr(bad[2], 'message').split('\n')[0] });
    else if (skip) cases.push({ id, outcome: 'skipped', message: attr(skip[1], 'message').split('\n')[0] });
    else cases.push({ id, outcome: 'passed', message: '' });
  }
  return cases;
}

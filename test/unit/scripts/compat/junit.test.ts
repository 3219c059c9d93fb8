import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJunit } from '../../../../scripts/compat/junit.js';
import { DESELECTED, EXPECTED_FAILURES, SUITE_FILES } from '../../../../scripts/compat/lists.js';

test('pytest JUnit XML: passed, failed (failure or error), skipped, with node ids and first message lines', () => {
  const xml = `<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4">
<testcase classname="tests.integration.api_network_test.TestNetworks" name="test_list_networks" time="0.5" />
<testcase classname="tests.integration.api_network_test.TestNetworks" name="test_create_with_links" time="1.0"><failure message="AssertionError: assert None == [&apos;a:b&apos;]&#10;second line">trace</failure></testcase>
<testcase classname="tests.integration.api_swarm_test.SwarmTest" name="test_init_swarm_force_new_cluster" time="0"><skipped type="pytest.skip" message="Test stalls the engine on 1.12.0">skip</skipped></testcase>
<testcase classname="tests.integration.models_services_test.ServiceTest" name="test_create" time="2"><error message="failed on setup &lt;x&gt;">e</error></testcase>
</testsuite></testsuites>`;
  assert.deepEqual(parseJunit(xml), [
    { id: 'tests/integration/api_network_test.py::TestNetworks::test_list_networks', outcome: 'passed', message: '' },
    {
      id: 'tests/integration/api_network_test.py::TestNetworks::test_create_with_links',
      outcome: 'failed',
      message: "AssertionError: assert None == ['a:b']",
    },
    {
      id: 'tests/integration/api_swarm_test.py::SwarmTest::test_init_swarm_force_new_cluster',
      outcome: 'skipped',
      message: 'Test stalls the engine on 1.12.0',
    },
    {
      id: 'tests/integration/models_services_test.py::ServiceTest::test_create',
      outcome: 'failed',
      message: 'failed on setup <x>',
    },
  ]);
});

test('every deselected or expected-to-fail test is in a file the run covers, has a reason, and is in one list only', () => {
  for (const [id, why] of [...Object.entries(DESELECTED), ...Object.entries(EXPECTED_FAILURES)]) {
    const m = /^tests\/integration\/(\w+)_test\.py::\w+::test_\w+$/.exec(id);
    assert.ok(m, `malformed node id ${id}`);
    assert.ok((SUITE_FILES as readonly string[]).includes(m[1]), `${id} is not in a covered file`);
    assert.ok(why.length > 20, `${id} needs a reason`);
    assert.ok(!(id in DESELECTED && id in EXPECTED_FAILURES), `${id} is in both lists`);
  }
});

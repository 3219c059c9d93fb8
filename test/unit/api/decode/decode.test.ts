import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { decodeBody, MAX_JSON_BODY, MAX_JSON_DEPTH, readLimited } from '../../../../src/api/decode/index.js';
import { parseJsonTree, JsonSyntaxError, JsonEmptyError } from '../../../../src/api/decode/json-tree.js';
import { SCHEMA } from '../../../../src/api/decode/schema.generated.js';
import { ApiError } from '../../../../src/util/errors.js';

/** The 400 message decodeBody answers for `body` as `name`. */
function rejects(name: Parameters<typeof decodeBody>[0], body: string): string {
  try {
    decodeBody(name, body);
  } catch (e) {
    assert.ok(e instanceof ApiError, `not an ApiError: ${String(e)}`);
    assert.equal(e.status, 400);
    return e.message;
  }
  assert.fail(`accepted: ${body.slice(0, 80)}`);
}

test('lowercase and mixed-case keys reach the canonical fields (docker-py scale)', () => {
  const spec = decodeBody(
    'ServiceSpec',
    '{"name":"web","taskTemplate":{"containerSpec":{"image":"busybox","COMMAND":["sleep"]}},"Mode":{"replicated":{"Replicas":3}}}',
  );
  assert.deepEqual(spec, {
    Name: 'web',
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Command: ['sleep'] } },
    Mode: { Replicated: { Replicas: 3 } },
  });
  const node = decodeBody('NodeSpec', '{"aVaIlAbIlItY":"drain","ROLE":"worker"}');
  assert.deepEqual(node, { Availability: 'drain', Role: 'worker' });
  // Go's folding: the Kelvin sign is a k.
  assert.deepEqual(decodeBody('SwarmUnlockRequest', '{"Unlock\u212aey":"SWMKEY-1-x"}'), { UnlockKey: 'SWMKEY-1-x' });
  // Exact name beats a folded one; the swagger's "HealthCheck" is Go's "Healthcheck".
  const hc = decodeBody('ServiceSpec', '{"TaskTemplate":{"ContainerSpec":{"HealthCheck":{"Test":["NONE"]}}}}');
  assert.deepEqual(hc.TaskTemplate.ContainerSpec?.Healthcheck, { Test: ['NONE'] });
});

test('map keys stay exactly as sent; unknown fields are dropped', () => {
  const v = decodeBody(
    'VolumeCreateBody',
    '{"name":"v1","labels":{"Com.Example":"A","com.example":"b"},"driverOpts":{"Type":"tmpfs"},"Bogus":1,"extra":{"deep":[1]}}',
  );
  assert.deepEqual(v, {
    Name: 'v1',
    Labels: { 'Com.Example': 'A', 'com.example': 'b' },
    DriverOpts: { Type: 'tmpfs' },
  });
  const n = decodeBody(
    'NetworkCreateRequest',
    '{"Name":"n","Options":{"com.docker.network.bridge.name":"x"},"IPAM":{"Config":[{"subnet":"10.9.0.0/24","AuxiliaryAddresses":{"Host1":"10.9.0.5"}}]}}',
  );
  assert.deepEqual(n.Options, { 'com.docker.network.bridge.name': 'x' });
  assert.deepEqual(n.IPAM?.Config, [{ Subnet: '10.9.0.0/24', AuxiliaryAddresses: { Host1: '10.9.0.5' } }]);
  // A map key named like a prototype property is an own entry, nothing else.
  const p = decodeBody('NodeSpec', '{"Labels":{"__proto__":"x","constructor":"y"}}');
  assert.deepEqual(Object.keys(p.Labels ?? {}), ['__proto__', 'constructor']);
  assert.equal(Object.getPrototypeOf(p.Labels), Object.prototype);
  // A field name that is an Object.prototype property is not a field.
  assert.deepEqual(decodeBody('NodeSpec', '{"constructor":1,"toString":"x","hasOwnProperty":[]}'), {});
});

test('wrong types are 400 with Go encoding/json wording', () => {
  assert.equal(
    rejects('ContainerCreate', '{"HostConfig":{"Binds":1.5}}'),
    'invalid JSON: json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Binds of type []string',
  );
  assert.equal(
    rejects('ContainerCreate', '{"Tty":"yes"}'),
    'invalid JSON: json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool',
  );
  assert.equal(
    rejects('NodeSpec', '{"Labels":{"a":{"b":"c"}}}'),
    'json: cannot unmarshal object into Go struct field NodeSpec.Labels of type string',
  );
  assert.equal(
    rejects('ServiceSpec', '{"TaskTemplate":{"Resources":{"Limits":{"NanoCPUs":{}}}}}'),
    'json: cannot unmarshal object into Go struct field Limit.TaskTemplate.Resources.Limits.NanoCPUs of type int64',
  );
  assert.equal(
    rejects('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":"3"}}}'),
    'json: cannot unmarshal string into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(
    rejects('VolumeCreateBody', '{"Labels":{"a":["x"]}}'),
    'json: cannot unmarshal array into Go struct field VolumeCreateBody.Labels of type string',
  );
  assert.equal(rejects('ServiceSpec', '[]'), 'json: cannot unmarshal array into Go value of type swarm.ServiceSpec');
  assert.equal(
    rejects('ServiceSpec', '{"Mode":"replicated"}'),
    'json: cannot unmarshal string into Go struct field ServiceSpec.Mode of type swarm.ServiceMode',
  );
  assert.equal(
    rejects('SwarmInitRequest', '{"ForceNewCluster":"yes"}'),
    'json: cannot unmarshal string into Go struct field InitRequest.ForceNewCluster of type bool',
  );
  assert.equal(
    rejects('ServiceSpec', '{"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":1}]}}}'),
    'json: cannot unmarshal number into Go struct field Mount.TaskTemplate.ContainerSpec.Mounts.Type of type mount.Type',
  );
  // A map of structs: the struct inside names itself, the path has no key.
  assert.equal(
    rejects('ContainerCreate', '{"NetworkingConfig":{"EndpointsConfig":{"n1":{"Aliases":"a"}}}}'),
    'invalid JSON: json: cannot unmarshal string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string',
  );
  // StrSlice takes a string or an array of strings; else the error of unmarshalling into a string.
  assert.deepEqual(decodeBody('ContainerCreate', '{"Cmd":"echo hi","Entrypoint":["sh","-c"]}'), {
    Cmd: ['echo hi'],
    Entrypoint: ['sh', '-c'],
  });
  assert.equal(
    rejects('ContainerCreate', '{"Cmd":[1]}'),
    'invalid JSON: json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string',
  );
  // exec's Cmd is a plain []string.
  assert.equal(
    rejects('ExecConfig', '{"Cmd":"ls"}'),
    'json: cannot unmarshal string into Go struct field ExecConfig.Cmd of type []string',
  );
  // []byte is base64.
  assert.equal(decodeBody('SecretSpec', '{"Name":"s","Data":"aGVsbG8="}').Data, 'aGVsbG8=');
  assert.equal(rejects('SecretSpec', '{"Data":"hello!"}'), 'illegal base64 data at input byte 5');
});

test('integers: no fractions, no exponents, range of the Go type', () => {
  assert.equal(
    rejects('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":-1}}}'),
    'json: cannot unmarshal number -1 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(
    rejects('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":-0}}}'),
    'json: cannot unmarshal number -0 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(decodeBody('ContainerUpdate', '{"Memory":-0}').Memory, 0);
  assert.equal(
    rejects('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":1.5}}}'),
    'json: cannot unmarshal number 1.5 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(
    rejects('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":1e3}}}'),
    'json: cannot unmarshal number 1e3 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
  );
  assert.equal(
    rejects('ServiceSpec', '{"EndpointSpec":{"Ports":[{"TargetPort":4294967296}]}}'),
    'json: cannot unmarshal number 4294967296 into Go struct field PortConfig.EndpointSpec.Ports.TargetPort of type uint32',
  );
  assert.equal(
    rejects('ContainerUpdate', '{"Memory":9223372036854775808}'),
    'invalid JSON: json: cannot unmarshal number 9223372036854775808 into Go struct field UpdateConfig.Memory of type int64',
  );
  assert.equal(
    decodeBody('ContainerUpdate', '{"Memory":-1,"memoryswap":9007199254740991}').MemorySwap,
    9007199254740991,
  );
  assert.equal(
    rejects('ServiceSpec', '{"UpdateConfig":{"Delay":"5s"}}'),
    'json: cannot unmarshal string into Go struct field UpdateConfig.UpdateConfig.Delay of type time.Duration',
  );
});

test('duplicate keys resolve as Go: last scalar wins across cases, structs and maps merge', () => {
  assert.deepEqual(decodeBody('NodeSpec', '{"Name":"a","name":"b"}'), { Name: 'b' });
  assert.deepEqual(decodeBody('NodeSpec', '{"name":"a","Name":"b"}'), { Name: 'b' });
  assert.deepEqual(decodeBody('NodeSpec', '{"Labels":{"a":"1"},"labels":{"b":"2","a":"3"}}'), {
    Labels: { a: '3', b: '2' },
  });
  assert.deepEqual(decodeBody('ServiceSpec', '{"Mode":{"Replicated":{"Replicas":2}},"mode":{"replicated":{}}}'), {
    Mode: { Replicated: { Replicas: 2 } },
  });
  assert.deepEqual(decodeBody('ExecConfig', '{"Cmd":["a","b"],"cmd":["c"]}'), { Cmd: ['c'] });
  // The first type error counts even when a later duplicate is well typed.
  assert.match(rejects('NodeSpec', '{"Role":1,"Role":"worker"}'), /NodeSpec.Role of type swarm.NodeRole/);
});

test('null: absent for structs, slices and maps; a no-op for scalars', () => {
  assert.deepEqual(decodeBody('ServiceSpec', '{"Name":"x","Labels":null,"Mode":null,"Networks":null,"name":null}'), {
    Name: 'x',
  });
  assert.deepEqual(decodeBody('NodeSpec', 'null'), {});
  assert.deepEqual(decodeBody('NodeSpec', '{"Labels":{"a":null}}'), { Labels: { a: '' } });
  assert.deepEqual(decodeBody('ServiceSpec', '{"Mode":{"Global":{"anything":[1]}}}'), { Mode: { Global: {} } });
});

test('syntax errors, empty bodies and trailing data as json.Decoder answers them', () => {
  assert.equal(rejects('NodeSpec', '{"Name":}'), "invalid character '}' looking for beginning of value");
  assert.equal(rejects('NodeSpec', '{"Name" "x"}'), "invalid character '\"' after object key");
  assert.equal(
    rejects('NodeSpec', '{"Name":"x",}'),
    "invalid character '}' looking for beginning of object key string",
  );
  assert.equal(rejects('NodeSpec', '{"Name":"x"'), 'unexpected EOF');
  assert.equal(rejects('NodeSpec', '{"Name":tru}'), "invalid character '}' in literal true (expecting 'e')");
  assert.equal(rejects('NodeSpec', '{"Name":"a\tb"}'), "invalid character '\\t' in string literal");
  assert.equal(rejects('NodeSpec', "{'Name':1}"), "invalid character '\\'' looking for beginning of object key string");
  assert.equal(rejects('NodeSpec', ''), 'got EOF while reading request body');
  assert.equal(rejects('NodeSpec', ' \n '), 'got EOF while reading request body');
  assert.equal(rejects('ContainerCreate', ''), 'invalid JSON: got EOF while reading request body');
  assert.deepEqual(decodeBody('ContainerConfig', ''), {});
  assert.deepEqual(decodeBody('NodeSpec', '{"Name":"a"} trailing'), { Name: 'a' });
  assert.throws(() => parseJsonTree('  '), JsonEmptyError);
  assert.deepEqual(parseJsonTree('{"a":1,"a":[true,null,"\\u00e9"]}'), {
    t: 'object',
    entries: [
      ['a', { t: 'number', raw: '1' }],
      ['a', { t: 'array', items: [{ t: 'bool', v: true }, { t: 'null' }, { t: 'string', v: 'é' }] }],
    ],
  });
});

test('nesting depth: deep bodies are a 400, not a stack overflow', () => {
  for (const depth of [MAX_JSON_DEPTH + 1, 10_001, 200_000]) {
    const body = '{"Labels":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
    assert.equal(rejects('NodeSpec', body), "invalid character '[' exceeded max depth");
  }
  // At the limit it parses (and then fails on the type, as Go would).
  const ok = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
  assert.doesNotThrow(() => parseJsonTree(ok, MAX_JSON_DEPTH));
  assert.throws(() => parseJsonTree('[' + ok + ']', MAX_JSON_DEPTH), JsonSyntaxError);
});

test('size limit: refused on Content-Length at once, and while streaming without reading on', async () => {
  await assert.rejects(readLimited(Readable.from([]), 10, '11'), (e: ApiError) => e.status === 413);
  let pulled = 0;
  const endless = new Readable({
    read() {
      pulled++;
      this.push(Buffer.alloc(1024, 0x20));
    },
  });
  await assert.rejects(
    readLimited(endless, 64 * 1024),
    (e: ApiError) => e.status === 413 && /at most 65536 bytes/.test(e.message),
  );
  const before = pulled;
  await new Promise((r) => setTimeout(r, 20));
  // Paused: nothing more is read after the refusal (the stream's own read-ahead aside).
  assert.ok(pulled - before <= 16, `read on after the limit: ${pulled - before} chunks`);
  assert.ok(pulled < 64 + 32, `read ${pulled} KiB for a 64 KiB limit`);
  endless.destroy();
  const body = await readLimited(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 7);
  assert.equal(body.toString(), '{"a":1}');
  assert.equal(MAX_JSON_BODY, 4 * 1024 * 1024);
});

test('every body type in the schema resolves (no dangling references)', () => {
  const seen = new Set<string>();
  const walk = (t: unknown): void => {
    const n = t as { k: string; name?: string; of?: unknown; fields?: Record<string, unknown> };
    if (n.k === 'ref') {
      assert.ok(SCHEMA.defs[n.name!], `dangling ref ${n.name}`);
      if (!seen.has(n.name!)) {
        seen.add(n.name!);
        walk(SCHEMA.defs[n.name!]);
      }
    }
    if (n.of) walk(n.of);
    for (const f of Object.values(n.fields ?? {})) walk(f);
  };
  for (const name of [
    'ContainerCreate',
    'ContainerUpdate',
    'ContainerConfig',
    'ExecConfig',
    'ExecStartCheck',
    'VolumeCreateBody',
    'NetworkCreateRequest',
    'NetworkConnect',
    'NetworkDisconnect',
    'SwarmInitRequest',
    'SwarmJoinRequest',
    'SwarmUnlockRequest',
    'SwarmSpec',
    'ServiceSpec',
    'NodeSpec',
    'SecretSpec',
    'ConfigSpec',
    'AuthConfig',
  ] as const) {
    walk(SCHEMA.defs[name]);
    assert.doesNotThrow(() => decodeBody(name, '{}'));
  }
});

test("a null element of a slice of structs is Go's zero struct, not a null readers trip on", () => {
  const spec = decodeBody('ServiceSpec', '{"Name":"s","EndpointSpec":{"Ports":[null,{"TargetPort":80}]}}');
  assert.deepEqual(spec.EndpointSpec?.Ports, [{}, { TargetPort: 80 }]);
  const n = decodeBody('NetworkCreateRequest', '{"Name":"n","IPAM":{"Config":[null]}}');
  assert.deepEqual(n.IPAM?.Config, [{}]);
});

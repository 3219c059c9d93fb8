import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  createFileObject,
  getFileObject,
  listFileObjects,
  removeFileObject,
  updateFileObject,
} from '../../../../src/manager/control/secrets.js';
import { createService } from '../../../../src/manager/control/services.js';
import { openSecretData } from '../../../../src/manager/secrets/seal.js';
import { MemoryStore } from '../../../helpers/memory-store.js';

/** Secrets and configs through the control API: sealed, immutable but for labels, guarded while in use. */

const b64 = (s: string) => Buffer.from(s).toString('base64');

for (const kind of ['secret', 'config'] as const) {
  test(`${kind}: create, names unique, only labels change, version checked`, async () => {
    const store = new MemoryStore();
    const c = { store, dek: crypto.randomBytes(32) };
    const o = await createFileObject(kind, c, { Name: 'db', Data: b64('pw') });
    const stored = getFileObject(kind, store, 'db');
    if (kind === 'secret') assert.equal(openSecretData(c.dek, stored.Spec.Data ?? '').toString(), 'pw');
    else assert.equal(stored.Spec.Data, b64('pw'));
    await assert.rejects(createFileObject(kind, c, { Name: 'db', Data: b64('x') }), {
      status: 409,
      message: `rpc error: code = AlreadyExists desc = ${kind} db already exists`,
    });
    const v = stored.Version.Index;
    const only = {
      status: 400,
      message: 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed',
    };
    await assert.rejects(updateFileObject(kind, c, 'db', v, { Name: 'db', Data: b64('other') }), only);
    await assert.rejects(updateFileObject(kind, c, 'db', v, { Name: 'renamed' }), only);
    await assert.rejects(updateFileObject(kind, c, 'db', v + 1, { Name: 'db', Labels: { a: 'b' } }), {
      status: 500,
      message: 'rpc error: code = Unknown desc = update out of sequence',
    });
    // The same data again, or none, is fine.
    await updateFileObject(kind, c, o.ID, v, { Name: 'db', Data: b64('pw'), Labels: { a: 'b' } });
    assert.deepEqual(getFileObject(kind, store, 'db').Spec.Labels, { a: 'b' });
    assert.deepEqual(
      listFileObjects(kind, store, new Map([['label', ['a=b']]])).map((x) => x.ID),
      [o.ID],
    );
    assert.throws(() => listFileObjects(kind, store, new Map([['bogus', ['x']]])), {
      status: 400,
      message: "invalid filter 'bogus'",
    });
  });

  test(`${kind}: not removed while a service uses it`, async () => {
    const store = new MemoryStore();
    const c = { store, dek: crypto.randomBytes(32) };
    const o = await createFileObject(kind, c, { Name: 'db', Data: b64('pw') });
    const ref =
      kind === 'secret'
        ? { Secrets: [{ SecretID: o.ID, SecretName: 'db', File: { Name: 'db', UID: '0', GID: '0', Mode: 0o444 } }] }
        : { Configs: [{ ConfigID: o.ID, ConfigName: 'db', File: { Name: 'db', UID: '0', GID: '0', Mode: 0o444 } }] };
    await createService(
      { store, allocationWaitMs: 0 },
      { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox', ...ref } } },
    );
    await assert.rejects(removeFileObject(kind, store, 'db'), {
      status: 400,
      message: `rpc error: code = InvalidArgument desc = ${kind} 'db' is in use by the following service: web`,
    });
    assert.equal(store.list(kind === 'secret' ? 'secrets' : 'configs').length, 1);
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, NodeImage, NodeImageShare } from '../../../../src/cluster/types.js';
import type { FindImageRequest } from '../../../../src/cluster/rpc.js';
import { findImage as findImageOf } from '../../../../src/manager/dispatcher/image-index.js';

const ID_A = `sha256:${'a'.repeat(64)}`;
const ID_B = `sha256:${'b'.repeat(64)}`;
const MANIFEST = `sha256:${'c'.repeat(64)}`;

/** A node and the images it reported (the store keeps them apart: `nodes` and `nodeImages`). */
interface Holding {
  node: Node;
  share: NodeImageShare;
}

function node(id: string, images: NodeImage[], state: Node['Status']['State'] = 'ready'): Holding {
  return {
    node: {
      ID: id,
      Version: { Index: 1 },
      CreatedAt: '',
      UpdatedAt: '',
      Spec: { Role: 'worker', Availability: 'active' },
      Status: { State: state, Addr: `10.0.0.${id.length}` },
    } as Node,
    share: { Port: 2378, Images: images },
  };
}

function findImage(
  holdings: Holding[],
  req: FindImageRequest,
  exclude?: string,
  mayHave?: (imageId: string, refs: string[]) => boolean,
) {
  const shares = new Map(holdings.map((h) => [h.node.ID, h.share]));
  return findImageOf(
    holdings.map((h) => h.node),
    (id) => shares.get(id),
    req,
    exclude,
    mayHave,
  );
}

test('a node that reported no images yet holds none', () => {
  const nodes = [node('n1', [{ Id: ID_A, Refs: [] }]), node('n22', [{ Id: ID_A, Refs: [] }])];
  const shares = new Map([['n22', nodes[1].share]]);
  assert.deepEqual(
    findImageOf(
      nodes.map((h) => h.node),
      (id) => shares.get(id),
      { digest: ID_A },
    ).holders,
    [{ nodeId: 'n22', addr: '10.0.0.3:2378' }],
  );
});

test('a digest finds the nodes holding that image ID or a manifest it was pulled by', () => {
  const nodes = [
    node('n1', [{ Id: ID_A, Refs: ['docker.io/library/x:1'] }]),
    node('n22', [{ Id: ID_A, Refs: [`reg:5000/x@${MANIFEST}`] }]),
    node('n333', [{ Id: ID_B, Refs: [] }]),
  ];
  assert.deepEqual(findImage(nodes, { digest: ID_A }), {
    imageId: ID_A,
    holders: [
      { nodeId: 'n1', addr: '10.0.0.2:2378' },
      { nodeId: 'n22', addr: '10.0.0.3:2378' },
    ],
  });
  assert.deepEqual(findImage(nodes, { digest: MANIFEST }).holders, [{ nodeId: 'n22', addr: '10.0.0.3:2378' }]);
  assert.deepEqual(findImage(nodes, { digest: `sha256:${'d'.repeat(64)}` }), { holders: [] });
});

test('a tag means the image most nodes hold under it; the asking node and nodes not ready are left out', () => {
  const tag = 'docker.io/library/x:1';
  const nodes = [
    node('n1', [{ Id: ID_A, Refs: [tag] }]),
    node('n22', [{ Id: ID_B, Refs: [tag] }]),
    node('n333', [{ Id: ID_B, Refs: [tag] }]),
    node('n55555', [{ Id: ID_B, Refs: [tag] }]),
    node('n4444', [{ Id: ID_B, Refs: [tag] }], 'down'),
  ];
  assert.deepEqual(findImage(nodes, { ref: tag }), {
    imageId: ID_B,
    holders: [
      { nodeId: 'n22', addr: '10.0.0.3:2378' },
      { nodeId: 'n333', addr: '10.0.0.4:2378' },
      { nodeId: 'n55555', addr: '10.0.0.6:2378' },
    ],
  });
  assert.deepEqual(findImage(nodes, { ref: tag }, 'n333').holders, [
    { nodeId: 'n22', addr: '10.0.0.3:2378' },
    { nodeId: 'n55555', addr: '10.0.0.6:2378' },
  ]);
  assert.deepEqual(findImage(nodes, { ref: 'docker.io/library/x:2' }), { holders: [] });
});

test('a private image counts only for a node the access rule allows, and the answer says it is private', () => {
  const tag = 'reg:5000/x:1';
  const nodes = [
    node('n1', [{ Id: ID_A, Refs: [tag], Private: true }]),
    node('n22', [{ Id: ID_A, Refs: [tag], Private: true }]),
  ];
  assert.deepEqual(findImage(nodes, { ref: tag }), { holders: [] });
  assert.deepEqual(
    findImage(nodes, { ref: tag }, 'n333', () => false),
    { holders: [] },
  );
  const seen: string[][] = [];
  const allowed = findImage(nodes, { ref: tag }, 'n333', (id, refs) => (seen.push([id, ...refs]), id === ID_A));
  assert.equal(allowed.private, true);
  assert.deepEqual(
    allowed.holders.map((h) => h.nodeId),
    ['n1', 'n22'],
  );
  assert.deepEqual(seen[0], [ID_A, tag]);
});

test('nodes fetching a public image are named as partial sources; never for a private one, never the asker', () => {
  const fetching = (id: string, image: string, images: NodeImage[] = []) => {
    const n = node(id, images);
    n.share.Fetching = [image];
    return n;
  };
  const nodes = [
    node('n1', [{ Id: ID_A, Refs: [] }]),
    fetching('n22', ID_A),
    fetching('n333', ID_A),
    fetching('n4444', ID_B),
  ];
  assert.deepEqual(findImage(nodes, { digest: ID_A }, 'n333'), {
    imageId: ID_A,
    holders: [{ nodeId: 'n1', addr: '10.0.0.2:2378' }],
    partial: [{ nodeId: 'n22', addr: '10.0.0.3:2378' }],
  });
  // No whole holder: nothing to start from.
  assert.deepEqual(findImage(nodes, { digest: ID_B }), { holders: [] });
  const priv = [node('n1', [{ Id: ID_A, Refs: [], Private: true }]), fetching('n22', ID_A)];
  assert.deepEqual(
    findImage(priv, { digest: ID_A }, undefined, () => true),
    {
      imageId: ID_A,
      holders: [{ nodeId: 'n1', addr: '10.0.0.2:2378' }],
      private: true,
    },
  );
});

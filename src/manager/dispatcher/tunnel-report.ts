import * as grpc from '@grpc/grpc-js';
import type { NodeTunnel } from '../../cluster/types.js';
import type { Empty, ReportTunnelRequest, RpcHandlers } from '../../cluster/rpc.js';
import type { Logger } from '../../util/log.js';
import type { Store } from '../store/store.js';
import { answerReport, reportingNode, unauthenticated, updateOwnNode, type Identify } from './own-node-report.js';

const KEY = /^[A-Za-z0-9+/]{43}=$/;
const STATES = new Set(['ready', 'down', 'unavailable']);

function invalid(details: string): grpc.ServiceError {
  return Object.assign(new Error(details), {
    code: grpc.status.INVALID_ARGUMENT,
    details,
    metadata: new grpc.Metadata(),
  });
}

/** Only what a tunnel report may say: a node cannot smuggle other fields into its node object. */
export function checkTunnel(t: NodeTunnel | undefined): NodeTunnel {
  if (!t || !STATES.has(t.State)) throw invalid('tunnel state must be ready, down or unavailable');
  if (t.State === 'ready' && !KEY.test(t.PublicKey ?? ''))
    throw invalid('tunnel public key must be 32 bytes in base64');
  if (t.PublicKey && !KEY.test(t.PublicKey)) throw invalid('tunnel public key must be 32 bytes in base64');
  if (t.Address && !/^\d{1,3}(\.\d{1,3}){3}$/.test(t.Address)) throw invalid('tunnel address must be an IPv4 address');
  const port = Number(t.Port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid('tunnel port out of range');
  return {
    PublicKey: t.PublicKey ?? '',
    Address: t.Address ?? '',
    Port: port,
    Epoch: Number(t.Epoch) || 0,
    State: t.State,
    ...(t.Mode === 'kernel' || t.Mode === 'userspace' ? { Mode: t.Mode } : {}),
    ...(t.Message ? { Message: String(t.Message).slice(0, 1000) } : {}),
  };
}

const MESSAGE_PREFIX = 'encrypted overlays: ';

/** What `docker node inspect` shows in Status.Message about the tunnel; '' when it is ready. */
export function statusMessage(t: NodeTunnel): string {
  if (t.State === 'ready') return '';
  return `${MESSAGE_PREFIX}tunnel ${t.State}${t.Message ? `: ${t.Message}` : ''}`;
}

/**
 * ReportTunnel: a node publishes its tunnel's public key and state on its own node object
 * (the caller's certificate names the node; nobody reports for another). Peers take keys
 * from there through the network view.
 */
export function tunnelReportHandlers(
  store: Store,
  identify: Identify,
  log: Logger,
): Pick<RpcHandlers<'Dispatcher'>, 'ReportTunnel'> {
  return {
    ReportTunnel: (call: grpc.ServerUnaryCall<ReportTunnelRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
      const nodeId = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!nodeId) return cb(unauthenticated());
      let tunnel: NodeTunnel;
      try {
        tunnel = checkTunnel(call.request.tunnel);
      } catch (e) {
        return cb(e as grpc.ServiceError);
      }
      let was: NodeTunnel['State'] | undefined;
      const write = updateOwnNode(store, nodeId, (n) => {
        if (JSON.stringify(n.Tunnel) === JSON.stringify(tunnel)) return false;
        was = n.Tunnel?.State;
        n.Tunnel = tunnel;
        // The docker CLI's node inspect shows Docker's fields only: a node that cannot encrypt says so in its status message.
        const message = statusMessage(tunnel);
        if (message) n.Status = { ...n.Status, Message: message };
        else if (n.Status.Message?.startsWith(MESSAGE_PREFIX)) n.Status = { ...n.Status, Message: '' };
        return true;
      }).then((wrote) => {
        if (wrote && was !== tunnel.State && tunnel.State !== 'ready')
          log.warn(
            { node: nodeId, state: tunnel.State, message: tunnel.Message },
            'node cannot encrypt overlay traffic',
          );
      });
      answerReport(write, cb);
    },
  };
}

/** Priority of the rules that route a task's routing-mesh replies by connection mark (before `main`). */
export const REPLY_RULE_PREF = 1000;
/** Then connected routes, then published UDP ports' replies to the ingress interface. */
export const UDP_RULE_PREF = 1002;

/** An ingress node as a task's replies see it: its address, MAC and the connection mark naming it. */
export interface ReplyNode {
  ip: string;
  mac: string;
  mark: number;
}

export interface RuleEntry {
  priority?: number;
  fwmark?: string;
  table?: string;
  ipproto?: string;
  sport?: number;
  suppress_prefixlen?: number;
}

export interface RouteEntry {
  dst?: string;
  gateway?: string;
  dev?: string;
  table?: string;
}

/**
 * Inside a task container on the ingress network: one rule and table per ingress node, so a
 * reply marked with that node goes back to its ingress endpoint; rules of nodes that left go.
 * Returns the `ip` lines to drop and to add, given the rules and routes the kernel holds.
 */
export function replyRouteCommands(
  rules: RuleEntry[],
  routes: RouteEntry[],
  ifname: string,
  nodes: ReplyNode[],
  udpPorts: number[],
  ownIp: string | undefined,
): { drop: string[]; add: string[] } {
  const want = new Set(nodes.map((n) => n.mark));
  const have = new Set<number>();
  const drop: string[] = [];
  // A UDP server answering from a wildcard socket has its source address picked by the route
  // lookup, before any mark: replies from a published UDP port take the ingress interface
  // (so the source is the task's ingress address and conntrack sees the reply of the marked
  // flow, whose mark then re-routes it to the right ingress node). Connected networks first.
  const own = ownIp ? nodes.find((n) => n.ip === ownIp) : nodes[0];
  const udpWant =
    udpPorts.length && own
      ? [`${UDP_RULE_PREF - 1} main`, ...udpPorts.map((p) => `${UDP_RULE_PREF} ${p} ${own.mark}`)].sort()
      : [];
  const udpHave = rules
    .filter((r) => r.priority === UDP_RULE_PREF || r.priority === UDP_RULE_PREF - 1)
    .map((r) => (r.priority === UDP_RULE_PREF ? `${r.priority} ${r.sport} ${r.table}` : `${r.priority} ${r.table}`))
    .sort();
  // UDP source-port rules are few: made afresh whenever they differ (a restarted agent adopts equal ones).
  const udpSame = JSON.stringify(udpWant) === JSON.stringify(udpHave);
  for (const r of rules) {
    if (!udpSame && (r.priority === UDP_RULE_PREF || r.priority === UDP_RULE_PREF - 1))
      drop.push(`rule del pref ${r.priority}`);
    if (r.priority !== REPLY_RULE_PREF || !r.fwmark) continue;
    const mark = Number(r.fwmark);
    if (want.has(mark)) have.add(mark);
    else
      drop.push(
        `rule del pref ${REPLY_RULE_PREF} fwmark ${r.fwmark} table ${r.table ?? mark}`,
        `route del default table ${r.table ?? mark}`,
      );
  }
  const routed = (n: ReplyNode) =>
    routes.some((r) => r.dst === 'default' && r.table === String(n.mark) && r.gateway === n.ip && r.dev === ifname);
  const add = nodes.flatMap((n) => [
    ...(routed(n) ? [] : [`route replace default via ${n.ip} dev ${ifname} table ${n.mark}`]),
    ...(have.has(n.mark) ? [] : [`rule add pref ${REPLY_RULE_PREF} fwmark 0x${n.mark.toString(16)} table ${n.mark}`]),
  ]);
  if (!udpSame && udpPorts.length && own) {
    add.push(`rule add pref ${UDP_RULE_PREF - 1} lookup main suppress_prefixlength 0`);
    for (const p of udpPorts) add.push(`rule add pref ${UDP_RULE_PREF} ipproto udp sport ${p} table ${own.mark}`);
  }
  return { drop, add };
}

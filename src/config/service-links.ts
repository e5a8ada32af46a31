/**
 * Kubernetes service links: for every Service in the namespace, the kubelet puts variables like
 * `<SVC>_SERVICE_HOST=10.0.0.1` and `<SVC>_PORT=tcp://10.0.0.1:80` into each container, where
 * <SVC> is the Service name upper-cased with "-" as "_". A Service named `pyfly-callbacks-...` (a
 * Helm release called pyfly-callbacks) thus produces PYFLY_CALLBACKS_* names that are not ours.
 *
 * Recognised only when both the name and the value have the exact shape the kubelet produces, so
 * a typo of a real key (`PYFLY_CALLBACKS_SERVR_PORT=9090`) is still reported rather than ignored.
 * See pkg/kubelet/envvars in kubernetes/kubernetes for the shapes.
 */
import { parseIp } from "../shared/ip-address.js";

// A Service name is a DNS-1035 label; a port name an IANA service name (letters, digits, "-").
const SERVICE = "[A-Z](?:[A-Z0-9_]*[A-Z0-9])?";
const PORT_NAME = "[A-Z0-9](?:[A-Z0-9_]*[A-Z0-9])?";
const PROTO = "TCP|UDP|SCTP";

type ValueShape = "ip" | "port" | "url" | "proto";

const SHAPES: readonly (readonly [RegExp, ValueShape])[] = [
  [new RegExp(`^${SERVICE}_SERVICE_HOST$`), "ip"],
  [new RegExp(`^${SERVICE}_SERVICE_PORT$`), "port"],
  [new RegExp(`^${SERVICE}_SERVICE_PORT_${PORT_NAME}$`), "port"],
  [new RegExp(`^${SERVICE}_PORT$`), "url"],
  [new RegExp(`^${SERVICE}_PORT_\\d{1,5}_(?:${PROTO})$`), "url"],
  [new RegExp(`^${SERVICE}_PORT_\\d{1,5}_(?:${PROTO})_ADDR$`), "ip"],
  [new RegExp(`^${SERVICE}_PORT_\\d{1,5}_(?:${PROTO})_PORT$`), "port"],
  [new RegExp(`^${SERVICE}_PORT_\\d{1,5}_(?:${PROTO})_PROTO$`), "proto"],
];

function isPort(text: string): boolean {
  return /^[1-9]\d{0,4}$/.test(text) && Number(text) <= 65_535;
}

function isIp(text: string): boolean {
  // The kubelet writes the ClusterIP as Go prints it: dotted quad or IPv6, never a name.
  return /^[0-9A-Fa-f.:]+$/.test(text) && parseIp(text) !== null;
}

function hasShape(value: string, shape: ValueShape): boolean {
  switch (shape) {
    case "ip":
      return isIp(value);
    case "port":
      return isPort(value);
    case "proto":
      return /^(?:tcp|udp|sctp)$/.test(value);
    case "url": {
      const m = /^(?:tcp|udp|sctp):\/\/(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d+)$/.exec(value);
      return m !== null && isIp((m[1] ?? m[2]) as string) && isPort(m[3] as string);
    }
  }
}

/** True when `name=value` is a variable Kubernetes service links put into every container. */
export function isServiceLinkVariable(name: string, value: string): boolean {
  return SHAPES.some(([pattern, shape]) => pattern.test(name) && hasShape(value, shape));
}

/** Contracts between the engine's parts: images feed containers, the bridge gives them addresses. */

/** The part of an OCI / Docker image config that decides how a container runs. */
export interface ImageConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Volumes?: Record<string, Record<string, never>>;
  /** HEALTHCHECK (durations in ns); containers inherit it unless they set their own. */
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

export interface ResolvedImage {
  /** `sha256:<config digest>` */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  config: ImageConfig;
  /** Unpacked layer directories, lowest first: the overlayfs lowerdirs. */
  layerDirs: string[];
}

/** One container's place on a network, as `NetworkSettings.Networks[name]` shows it. */
export interface EndpointInfo {
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
}

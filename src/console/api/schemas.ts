/**
 * Request body schemas (TypeBox: JSON Schema and TypeScript types from one definition).
 * The server validates every body against them before a handler runs, and the OpenAPI
 * document embeds them. Admin bodies reject unknown fields; agent bodies tolerate them so
 * that an agent one version ahead still talks to this console.
 */
import { Type, type TLiteral, type TUnion } from "@sinclair/typebox";
import { BOOT_MODES, DISK_BUSES, IP_POLICIES } from "../../common/model.js";
import { MAX_RETENTION_SECONDS, MAX_RETENTION_TIERS } from "../../store/retention/retention-policy.js";
import { INITIATING_STEPS, LAUNCH_MODES, PROJECT_TYPES, REPLICATION_STATES } from "../../common/states.js";
import { IMAGE_FORMATS } from "../../providers/image-format.js";

function oneOf<T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)));
}

const strict = { additionalProperties: false } as const;
/** Byte counts: whole numbers a double holds exactly. */
const Bytes = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Name = Type.String({ minLength: 1, maxLength: 63, pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$" });

/**
 * The shape of a retention policy. Handlers then apply parseRetentionPolicy for the rules a
 * schema cannot say (tiers nest and widen, the reach), naming the field the same way.
 */
export const RetentionPolicyBody = Type.Object(
  {
    keepAllSeconds: Type.Integer({ minimum: 0, maximum: MAX_RETENTION_SECONDS }),
    tiers: Type.Array(
      Type.Object(
        {
          everySeconds: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_SECONDS }),
          forSeconds: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_SECONDS }),
        },
        strict,
      ),
      { maxItems: MAX_RETENTION_TIERS },
    ),
  },
  strict,
);

export const ProjectSettingsPatch = Type.Partial(
  Type.Object(
    {
      bandwidthLimitMbps: Type.Number({ minimum: 0, maximum: 1e9 }),
      retention: RetentionPolicyBody,
      stagingLocation: Type.String({ minLength: 1, maxLength: 1024 }),
      testedRecentlyDays: Type.Integer({ minimum: 1, maximum: 3650 }),
      rpoTargetSeconds: Type.Integer({ minimum: 1 }),
    },
    strict,
  ),
);

export const CreateProjectBody = Type.Object(
  { name: Name, type: oneOf(PROJECT_TYPES), settings: Type.Optional(ProjectSettingsPatch) },
  strict,
);

export const PatchProjectBody = Type.Object({ settings: ProjectSettingsPatch }, strict);

export const CreateTokenBody = Type.Object(
  { ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86_400 })) },
  strict,
);

export const BlueprintPatch = Type.Object(
  {
    instanceType: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    cpus: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1024 }), Type.Null()])),
    memoryMiB: Type.Optional(Type.Union([Type.Integer({ minimum: 64, maximum: 1 << 30 }), Type.Null()])),
    network: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    subnet: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    ipPolicy: Type.Optional(oneOf(IP_POLICIES)),
    fixedIp: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    securityGroups: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64 }),
    ),
    tags: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 256 }))),
    mac: Type.Optional(
      Type.Union([Type.String({ pattern: "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$" }), Type.Null()]),
    ),
    diskBus: Type.Optional(oneOf(DISK_BUSES)),
    bootMode: Type.Optional(oneOf(BOOT_MODES)),
  },
  strict,
);

export const LaunchBody = Type.Object(
  {
    machineIds: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 500 }),
    mode: oneOf(LAUNCH_MODES),
    pit: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 32, pattern: "^[a-z][a-z0-9-]*$" })),
    outDir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** Image format of the export provider's disks (default raw). */
    format: Type.Optional(oneOf(IMAGE_FORMATS)),
  },
  strict,
);

export const MachineSelectionBody = Type.Object(
  { machineIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 500 })) },
  strict,
);

const DiskSpecBody = Type.Object({
  path: Type.String({ minLength: 1, maxLength: 4096 }),
  sizeBytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});

export const AgentRegisterBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096 }),
  name: Name,
  hostname: Type.String({ minLength: 1, maxLength: 255 }),
  cpus: Type.Integer({ minimum: 1, maximum: 4096 }),
  memoryMiB: Type.Integer({ minimum: 1, maximum: 1 << 30 }),
  disks: Type.Array(DiskSpecBody, { minItems: 1, maxItems: 64 }),
  publicKeyPem: Type.String({ minLength: 1, maxLength: 16_384 }),
});

const DiskProgressBody = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  totalBytes: Bytes,
  replicatedBytes: Bytes,
  backlogBytes: Bytes,
  rescannedBytes: Bytes,
  /** Intercept tracker: the disk's NBD URI (newer agents only). */
  nbdUri: Type.Optional(Type.String({ minLength: 1, maxLength: 4200, pattern: "^nbd(\\+unix)?://" })),
});

export const AgentStatusBody = Type.Object({
  state: oneOf(REPLICATION_STATES),
  step: Type.Optional(oneOf(INITIATING_STEPS)),
  progressPercent: Type.Number({ minimum: 0, maximum: 100 }),
  lagSeconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  etaSeconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  reason: Type.Optional(Type.String({ maxLength: 4096 })),
  disks: Type.Array(DiskProgressBody, { maxItems: 64 }),
  bytesSent: Bytes,
  /** Change tracker name (newer agents only). */
  tracker: Type.Optional(Type.String({ minLength: 1, maxLength: 32, pattern: "^[a-z][a-z0-9-]*$" })),
});

export const FailbackRegisterBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096 }),
  machineId: Type.String({ minLength: 1, maxLength: 128 }),
  publicKeyPem: Type.String({ minLength: 1, maxLength: 16_384 }),
  disks: Type.Array(DiskSpecBody, { minItems: 1, maxItems: 64 }),
});

export const FailbackStatusBody = Type.Object({
  sentBytes: Bytes,
  totalBytes: Bytes,
  caughtUp: Type.Boolean(),
});

export const SnapshotBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    seq: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

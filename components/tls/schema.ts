import { z } from "zod";
import type { MeshConfig } from "../mesh/schema";
import type { RegistryConfig } from "../registry/schema";
import { doc, formatKey, hostname, type ConfigProblem, type Environment } from "../schema-kit";

/** Which ClusterIssuer signs one endpoint's certificate. */
export const issuerChoice = z.enum(["self-signed", "acme"]);
export type IssuerChoice = z.infer<typeof issuerChoice>;

export const LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";

/**
 * The ACME account and its DNS-01 solver. DNS-01, not HTTP-01: the ingress Gateway redirects port
 * 80 to HTTPS (an HTTP-01 challenge would be redirected and never answered), the registry is
 * reached by SNI passthrough (no HTTP route at all), and DNS-01 needs no inbound reachability.
 * The DNS provider's API token is the `platform:acmeDnsApiToken` secret.
 */
export const acmeSchema = z.strictObject({
  email: z.email(),
  server: z.url().default(LETSENCRYPT_PRODUCTION),
  dns01: z.strictObject({
    provider: z.enum(["cloudflare"]).default("cloudflare"),
    /** DNS zones the solver answers for (cert-manager `selector.dnsZones`); all when empty. */
    zones: z.array(hostname).default([]),
  }),
});
export type AcmeConfig = z.infer<typeof acmeSchema>;

/**
 * Certificates of the endpoints something outside the cluster must trust. Each endpoint chooses
 * its issuer on its own (`platform:registry.tls.issuer` for the registry, `ingress.issuer` here for
 * the ingress the front end calls); ACME settings are shared.
 */
export const tlsSchema = z.strictObject({
  acme: doc(
    acmeSchema.optional(),
    "ACME account (publicly trusted certificates) with a DNS-01 solver; its API token is the platform:acmeDnsApiToken secret.",
    { email: "platform@example.org", dns01: { provider: "cloudflare", zones: ["example.org"] } },
  ),
  ingress: doc(
    z.strictObject({ issuer: issuerChoice.default("self-signed") }).default({ issuer: "self-signed" }),
    "Issuer of the ingress Gateway's certificate (platform:mesh.ingressHostname): acme outside local.",
    { issuer: "acme" },
  ),
});
export type TlsConfig = z.infer<typeof tlsSchema>;

/** An endpoint reached from outside the cluster, with the key choosing its certificate's issuer. */
export interface ExternalEndpoint {
  readonly what: string;
  readonly issuerKey: readonly PropertyKey[];
  readonly issuer: IssuerChoice;
}

/** The sections that decide which endpoints need certificates and from which issuer. */
export interface TlsInputs {
  readonly environment: Environment;
  readonly registry: Pick<RegistryConfig, "enabled" | "mode" | "tls">;
  readonly mesh: Pick<MeshConfig, "enabled">;
  readonly tls: TlsConfig;
}

/**
 * Endpoints something outside the cluster must trust: the in-cluster registry (CI's Docker pushes,
 * the nodes pull) and the ingress Gateway (the front end calls it). Each chooses its own issuer.
 */
export function externalEndpoints(c: Omit<TlsInputs, "environment">): ExternalEndpoint[] {
  const out: ExternalEndpoint[] = [];
  if (c.registry.enabled && c.registry.mode === "in-cluster")
    out.push({ what: "registry", issuerKey: ["registry", "tls", "issuer"], issuer: c.registry.tls.issuer });
  if (c.mesh.enabled)
    out.push({ what: "ingress", issuerKey: ["tls", "ingress", "issuer"], issuer: c.tls.ingress.issuer });
  return out;
}

/** Endpoints whose certificate comes from ACME. */
export function acmeEndpoints(c: Omit<TlsInputs, "environment">): ExternalEndpoint[] {
  return externalEndpoints(c).filter((e) => e.issuer === "acme");
}

/** The ACME account when an endpoint asks for it; publicly trusted issuers outside local. */
export function tlsChecks(c: TlsInputs): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const acme = acmeEndpoints(c);
  if (acme.length > 0 && !c.tls.acme)
    out.push({
      key: formatKey(["tls", "acme"]),
      message: `the acme issuer (chosen by ${acme.map((e) => formatKey(e.issuerKey)).join(", ")}) needs the ACME account and its DNS-01 solver`,
      example: '{"email":"platform@example.org","dns01":{"provider":"cloudflare","zones":["example.org"]}}',
    });
  if (c.environment !== "local") {
    for (const e of externalEndpoints(c))
      if (e.issuer === "self-signed")
        out.push({
          key: formatKey(e.issuerKey),
          message: `the ${e.what} is reached from outside the cluster (CI's Docker, the nodes, the front end), which do not trust the in-cluster self-signed CA; use "acme" outside local`,
          example: '"acme"',
        });
    if (acme.length > 0 && c.tls.acme && /staging/i.test(c.tls.acme.server))
      out.push({
        key: formatKey(["tls", "acme", "server"]),
        message:
          "a staging ACME directory issues certificates nobody trusts; use the production directory outside local",
        example: '"https://acme-v02.api.letsencrypt.org/directory"',
      });
  }
  return out;
}

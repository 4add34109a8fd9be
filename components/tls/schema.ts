import { z } from "zod";
import { doc, hostname } from "../schema-kit";

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

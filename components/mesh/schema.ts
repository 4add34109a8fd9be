import { z } from "zod";
import { doc, hostname } from "../schema-kit";

export const meshSchema = z.strictObject({
  enabled: doc(z.boolean().default(true), "Istio with STRICT mTLS and default-deny authorization.", true),
  ingressHostname: doc(
    hostname.default("platform.local"),
    "Hostname of the ingress gateway (TLS).",
    "ai.example.org",
  ),
  flagger: doc(z.boolean().default(true), "Install Flagger for canary releases.", true),
  ingressReplicas: doc(z.number().int().min(1).max(20).default(1), "Ingress gateway replicas.", 2),
  istiodReplicas: doc(z.number().int().min(1).max(5).default(1), "istiod (control plane) replicas.", 2),
  ingressServiceType: doc(
    z.enum(["LoadBalancer", "NodePort", "ClusterIP"]).default("LoadBalancer"),
    "Service type of the ingress gateway (K3s ships a LoadBalancer, servicelb).",
    "LoadBalancer",
  ),
});
export type MeshConfig = z.infer<typeof meshSchema>;

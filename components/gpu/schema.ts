import { z } from "zod";
import { doc } from "../schema-kit";

export const gpuSchema = z.strictObject({
  enabled: doc(z.boolean().default(true), "Install the NVIDIA stack when the cluster has GPU pools.", true),
  mode: doc(
    z.enum(["operator", "device-plugin"]).default("operator"),
    "`operator`: the NVIDIA GPU operator; `device-plugin`: the device plugin alone, for hosts with drivers and toolkit.",
    "operator",
  ),
  driver: doc(
    z.enum(["preinstalled", "operator"]).default("preinstalled"),
    "Whether host drivers are preinstalled or installed by the operator.",
    "preinstalled",
  ),
});
export type GpuConfig = z.infer<typeof gpuSchema>;

/** Image build rules: every first-party image carries an SBOM and a provenance attestation. */
import { attestationOn, BUILD_COMMAND_TYPE, imageBuildOf, provenanceMode } from "../lib/builds";
import { stringList } from "../lib/config";
import { DOCKER_IMAGE_TYPES } from "../lib/dockerfile";
import { defineResourcePolicy } from "../lib/policy";
import { globMatch, str } from "../lib/values";

const FIX =
  "build with `docker buildx build --sbom=true --provenance=mode=max --push` (components/images/service-image.ts does)";

export const imageBuildAttested = defineResourcePolicy<{
  provenanceMode: "min" | "max";
  allowImages: string[];
}>({
  name: "image-build-attested",
  description:
    "Images the program builds carry an SBOM and a provenance attestation (BuildKit's in-toto attestations, pushed with the image).",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Build first-party images with the platform's ServiceImage (a `docker buildx build --sbom=true --provenance=mode=max --push` on a builder that attests: `docker buildx create --use`). `@pulumi/docker`'s Image cannot attest, and `@pulumi/docker-build`'s turns provenance off and has no SBOM option (pulumi/pulumi-docker-build#73).",
  config: {
    provenanceMode: {
      type: "string",
      enum: ["min", "max"],
      description: "Least provenance detail accepted: `max` also records the build's steps and sources.",
      default: "max",
    },
    allowImages: stringList("Image globs exempt from the rule (by the name they are pushed as)."),
  },
  appliesTo: (type, props) =>
    DOCKER_IMAGE_TYPES.has(type) ||
    (type === BUILD_COMMAND_TYPE && (str(props["create"]) ?? str(props["update"]) ?? "").includes("docker")),
  validate: (ctx, report) => {
    const build = imageBuildOf(ctx.type, ctx.props);
    if (!build) return;
    const name = build.imageName ?? ctx.name;
    if ((ctx.config.allowImages ?? []).some((g) => globMatch(g, name))) return;
    if (build.kind !== "buildx-command") {
      // A Dockerfile alone (`npm run policy -- check Dockerfile`) pushes nothing: nothing to attest.
      if (!build.imageName) return;
      report(
        `image ${name} is built by ${ctx.type}, which cannot attach an SBOM and a provenance attestation; ${FIX}`,
      );
      return;
    }
    if (!attestationOn(build.sbom))
      report(
        `image ${name} is built without an SBOM attestation (--sbom=${build.sbom ?? "<unset>"}); ${FIX}`,
      );
    if (!attestationOn(build.provenance))
      report(
        `image ${name} is built without a provenance attestation (--provenance=${build.provenance ?? "<unset>"}); ${FIX}`,
      );
    else if ((ctx.config.provenanceMode ?? "max") === "max" && provenanceMode(build.provenance!) === "min")
      report(
        `image ${name} records provenance mode=min (no build steps or sources); use --provenance=mode=max`,
      );
  },
});

export const buildPolicies = [imageBuildAttested];

import { readConfig } from "../../lib/config";
import { listModels } from "../../lib/models";
import { Jobs } from "./jobs";

export const dynamic = "force-dynamic";

export default async function JobsPage() {
  const cfg = readConfig();
  if (!cfg.ok) return null; // the layout shows what is wrong
  const list = await listModels(cfg.config);
  return <Jobs list={list} />;
}

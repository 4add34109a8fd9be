import { readConfig } from "../lib/config";
import { listModels } from "../lib/models";
import { Chat } from "./chat";

export const dynamic = "force-dynamic";

export default async function ChatPage() {
  const cfg = readConfig();
  if (!cfg.ok) return null; // the layout shows what is wrong
  const list = await listModels(cfg.config);
  return <Chat list={list} />;
}

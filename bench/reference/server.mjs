// The reference sync server for fieldcase's benchmark: automerge-repo with its WebSocket server
// adapter and Node file-system storage, as the automerge-repo sync server runs it. Prints
// {"port": N} once listening; stops when its stdin closes.
//
// Usage: node server.mjs DATA_DIR
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const dir = process.argv[2]
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: "reference-sync-server",
  // A sync server answers what clients ask for; it does not push every document to everyone.
  sharePolicy: async () => false,
})
wss.on("listening", () => {
  console.log(JSON.stringify({ port: wss.address().port }))
})
process.stdin.on("data", () => {})
process.stdin.on("end", async () => {
  // A handle a peer asked for and never got is not ready, and flushing it throws: flush the rest.
  const ready = Object.values(repo.handles).filter((h) => h.isReady()).map((h) => h.documentId)
  await repo.flush(ready).catch(() => {})
  process.exit(0)
})

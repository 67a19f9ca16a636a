// The reference client for fieldcase's benchmark: a phone-like automerge-repo peer with Node
// file-system storage, talking to server.mjs over a WebSocket. Prints one JSON line of results.
//
//   node client.mjs seed   DIR N NOTES URLS_FILE      make N documents of NOTES notes offline
//   node client.mjs upload DIR WS_URL URLS_FILE       sync them up; timed until the server has them
//   node client.mjs download DIR WS_URL URLS_FILE     a fresh peer fetches them all; timed
//   node client.mjs change DIR WS_URL URLS_FILE K     add one note to K documents and sync them up
//   node client.mjs resync DIR WS_URL URLS_FILE       a peer holding them all reconnects; timed
//                                                     until it has the server's heads of each
import { Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { readFileSync, writeFileSync } from "node:fs"

const [mode, dir, ...rest] = process.argv.slice(2)

function note(i) {
  return `Visit ${i}: went with the client to the centre; the officer took the application, asked for the birth certificate copy, and set the interview for next week. Client calm.`
}

function vmHwmKb() {
  const status = readFileSync("/proc/self/status", "utf8")
  const m = status.match(/VmHWM:\s+(\d+) kB/)
  return m ? Number(m[1]) : 0
}

function resetHwm() {
  try { writeFileSync("/proc/self/clear_refs", "5") } catch { /* not allowed: keep the peak */ }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)) }

async function connected(url) {
  const adapter = new BrowserWebSocketClientAdapter(url)
  const repo = new Repo({ network: [adapter], storage: new NodeFSStorageAdapter(dir) })
  // Wait until the server's storage id is known, so its sync state can be asked for.
  for (;;) {
    const peers = repo.peers
    if (peers.length > 0) {
      const id = repo.getStorageIdOfPeer(peers[0])
      if (id) return { repo, serverStorage: id }
    }
    await sleep(5)
  }
}

async function untilServerHas(handles, serverStorage) {
  for (;;) {
    let done = true
    for (const h of handles) {
      const info = h.getSyncInfo(serverStorage)
      const mine = h.heads()
      if (!info || info.lastHeads.length !== mine.length || !mine.every((x) => info.lastHeads.includes(x))) {
        done = false
        break
      }
    }
    if (done) return
    await sleep(10)
  }
}

async function main() {
  if (mode === "seed") {
    const [n, notes, urlsFile] = [Number(rest[0]), Number(rest[1]), rest[2]]
    const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(dir) })
    const urls = []
    for (let c = 0; c < n; c++) {
      const h = repo.create({ client_code: `K-${c}`, notes: {} })
      for (let i = 0; i < notes; i++) {
        h.change((d) => {
          d.notes[`note-${c}-${i}`] = { kind: "visit", body: note(c * notes + i), author: "ana", at: Date.now() }
        })
      }
      urls.push(h.url)
    }
    await repo.flush()
    writeFileSync(urlsFile, JSON.stringify(urls))
    console.log(JSON.stringify({ seeded: n }))
    process.exit(0)
  }
  const [url, urlsFile] = rest
  const urls = JSON.parse(readFileSync(urlsFile, "utf8"))
  resetHwm()
  const t0 = performance.now()
  const { repo, serverStorage } = await connected(url)
  if (mode === "upload" || mode === "resync") {
    const handles = await Promise.all(urls.map((u) => repo.find(u)))
    if (mode === "upload") {
      await untilServerHas(handles, serverStorage)
    } else {
      // Holding every document, this peer learns what changed only by syncing each of them.
      await untilServerHas(handles, serverStorage)
    }
  } else if (mode === "download") {
    await Promise.all(urls.map((u) => repo.find(u)))
    await repo.flush()
  } else if (mode === "change") {
    const k = Number(rest[2])
    const handles = await Promise.all(urls.slice(0, k).map((u) => repo.find(u)))
    for (const h of handles) {
      h.change((d) => {
        d.notes[`follow-${Date.now()}-${Math.random()}`] = { kind: "visit", body: "follow-up call: the decision arrived, interview on Monday", author: "office", at: Date.now() }
      })
    }
    await untilServerHas(handles, serverStorage)
  } else {
    throw new Error(`unknown mode ${mode}`)
  }
  const ms = performance.now() - t0
  await repo.flush()
  console.log(JSON.stringify({ mode, docs: urls.length, ms, peak_kb: vmHwmKb() }))
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(1) })

// The reference client for fieldcase's benchmark: a phone-like automerge-repo peer with Node
// file-system storage, talking to server.mjs over a WebSocket. Prints one JSON line of results.
//
//   node client.mjs seed   DIR N NOTES URLS_FILE      make N documents of NOTES notes offline
//   node client.mjs upload DIR WS_URL URLS_FILE       sync them up; timed until the server has them
//   node client.mjs download DIR WS_URL URLS_FILE     a fresh peer fetches them all; timed
//   node client.mjs change DIR WS_URL URLS_FILE K     add one note to K documents and sync them up
//   node client.mjs resync DIR WS_URL URLS_FILE       a peer holding them all reconnects; timed
//                                                     until it has the server's heads of each
//   node client.mjs download-cut DIR WS_URL URLS_FILE like download, but ends (storage flushed)
//                                                     as soon as the connection drops
//   node client.mjs load DIR WS_URL URLS_FILE FIRST COUNT WORKERS PER_WORKER
//                                                     office load: COUNT phone-like peers in this
//                                                     process, peer i (FIRST..FIRST+COUNT) holding
//                                                     the PER_WORKER documents of worker i % WORKERS;
//                                                     prints {"ready"} once all hold them, then on a
//                                                     "go" line each changes document i % PER_WORKER
//                                                     at the same moment; prints every latency (from
//                                                     the change until the server's sync state shows
//                                                     its heads)
//
// Every mode gives up after BENCH_TIMEOUT_MS (default 600000) and prints {"error": "timeout"}.
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

const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS || 600000)
// Nothing waits for ever: a whole run that overruns reports a timeout.
setTimeout(() => {
  console.log(JSON.stringify({ mode, error: "timeout", after_ms: timeoutMs }))
  process.exit(2)
}, timeoutMs).unref()

async function connected(url, storageDir = dir) {
  const adapter = new BrowserWebSocketClientAdapter(url)
  const repo = new Repo({ network: [adapter], storage: new NodeFSStorageAdapter(storageDir) })
  // Wait until the server's storage id is known, so its sync state can be asked for.
  for (;;) {
    const peers = repo.peers
    if (peers.length > 0) {
      const id = repo.getStorageIdOfPeer(peers[0])
      if (id) return { repo, adapter, serverStorage: id }
    }
    await sleep(5)
  }
}

// automerge-repo's `find` sometimes rejects a document the server holds as "unavailable" (seen
// right after another peer synced it up, on this machine about one run in four): try again, as
// an app would, and report how often that was needed.
let findRetries = 0
async function find(repo, url, tries = 5) {
  for (let i = 1; ; i++) {
    try {
      return await repo.find(url)
    } catch (e) {
      if (i >= tries || !String(e).includes("unavailable")) throw e
      findRetries++
      await sleep(500)
    }
  }
}

function serverHas(h, serverStorage) {
  const info = h.getSyncInfo(serverStorage)
  const mine = h.heads()
  return info && info.lastHeads.length === mine.length && mine.every((x) => info.lastHeads.includes(x))
}

async function untilServerHas(handles, serverStorage, deadline = Infinity) {
  for (;;) {
    if (handles.every((h) => serverHas(h, serverStorage))) return true
    if (performance.now() > deadline) return false
    await sleep(10)
  }
}

function readLine() {
  return new Promise((resolve) => {
    let text = ""
    const onData = (chunk) => {
      text += chunk
      if (text.includes("\n")) {
        process.stdin.off("data", onData)
        resolve(text.trim())
      }
    }
    process.stdin.setEncoding("utf8")
    process.stdin.on("data", onData)
  })
}

// Office load: many phone-like peers in this one process, each with its own Repo, WebSocket and
// file-system storage.
async function load() {
  const [url, urlsFile, first, count, workers, perWorker] = [rest[0], rest[1], ...rest.slice(2, 6).map(Number)]
  const urls = JSON.parse(readFileSync(urlsFile, "utf8"))
  const t0 = performance.now()
  const peers = await Promise.all(Array.from({ length: count }, async (_, k) => {
    const i = first + k
    const w = i % workers
    const { repo, serverStorage } = await connected(url, `${dir}/phone-${i}`)
    const mine = urls.slice(w * perWorker, (w + 1) * perWorker)
    const handles = await Promise.all(mine.map((u) => find(repo, u)))
    await untilServerHas(handles, serverStorage)
    return { i, repo, serverStorage, handle: handles[i % perWorker] }
  }))
  await Promise.all(peers.map((p) => p.repo.flush()))
  console.log(JSON.stringify({ ready: count, setup_ms: performance.now() - t0 }))
  await readLine()
  const perPeerMs = Number(process.env.BENCH_PEER_TIMEOUT_MS || 120000)
  const started = peers.map((p) => {
    const at = performance.now()
    p.handle.change((d) => {
      d.notes[`phone-${p.i}-${Date.now()}`] = { kind: "visit", body: `phone ${p.i}: client met at the centre`, author: `w${p.i % workers}`, at: Date.now() }
    })
    return at
  })
  const results = await Promise.all(peers.map(async (p, k) => {
    const ok = await untilServerHas([p.handle], p.serverStorage, started[k] + perPeerMs)
    return { ok, ms: performance.now() - started[k] }
  }))
  const latencies = results.filter((r) => r.ok).map((r) => r.ms)
  const errors = results.length - latencies.length
  console.log(JSON.stringify({
    mode, peers: count, latencies_ms: latencies, errors,
    first_error: errors > 0 ? `server did not show the change within ${perPeerMs} ms` : null,
    wall_ms: Math.max(...results.map((r) => r.ms)), peak_kb: vmHwmKb(), find_retries: findRetries,
  }))
  await Promise.all(peers.map((p) => p.repo.flush()))
  process.exit(0)
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
  if (mode === "load") return load()
  const [url, urlsFile] = rest
  const urls = JSON.parse(readFileSync(urlsFile, "utf8"))
  resetHwm()
  const t0 = performance.now()
  const { repo, adapter, serverStorage } = await connected(url)
  if (mode === "upload" || mode === "resync") {
    const handles = await Promise.all(urls.map((u) => find(repo, u)))
    if (mode === "upload") {
      await untilServerHas(handles, serverStorage)
    } else {
      // Holding every document, this peer learns what changed only by syncing each of them.
      await untilServerHas(handles, serverStorage)
    }
  } else if (mode === "download") {
    await Promise.all(urls.map((u) => find(repo, u)))
    await repo.flush()
  } else if (mode === "download-cut") {
    // The link is cut part way: keep what arrived (flushed to storage) and stop, as a phone
    // losing its signal would; `resync` on the same folder is the resumed sync.
    const dropped = new Promise((r) => adapter.on("peer-disconnected", () => r(true)))
    const ready = []
    const finds = urls.map((u) => repo.find(u).then((h) => { ready.push(h.documentId) }, () => {}))
    const all = Promise.all(finds).then(() => false)
    const cut = await Promise.race([dropped, all])
    const ms = performance.now() - t0
    // Only what arrived: a handle still waiting for its document cannot be flushed.
    await repo.flush([...ready])
    console.log(JSON.stringify({ mode, docs: urls.length, cut, docs_ready: ready.length, ms, peak_kb: vmHwmKb() }))
    process.exit(0)
  } else if (mode === "change") {
    const k = Number(rest[2])
    const handles = await Promise.all(urls.slice(0, k).map((u) => find(repo, u)))
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
  console.log(JSON.stringify({ mode, docs: urls.length, ms, peak_kb: vmHwmKb(), find_retries: findRetries }))
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(1) })

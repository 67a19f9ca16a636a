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

// automerge-repo's `find` sometimes rejects a document the server was given as "unavailable":
// right after another peer synced it up (its sync state showing the server's heads), a fresh peer
// is told the server does not have it, on this machine in about one run of three with 50
// documents; the server then keeps answering so, even after a restart. Try once more with a new
// Repo (same storage) a second later, as an app restarting its sync would, and report how often
// that was needed (`repo_retries`); a document still unavailable is an error of the run.
let repoRetries = 0
async function fetchAll(url, storageDir, urls, tries = 2) {
  for (let i = 1; ; i++) {
    const { repo, adapter, serverStorage } = await connected(url, storageDir)
    try {
      const handles = await Promise.all(urls.map((u) => repo.find(u)))
      return { repo, adapter, serverStorage, handles }
    } catch (e) {
      if (i >= tries || !String(e).includes("unavailable")) throw e
      repoRetries++
      try { await repo.shutdown() } catch { /* already disconnected */ }
      await sleep(1000)
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
  // A peer that cannot fetch its documents counts as an error; the others go on.
  const setup = await Promise.all(Array.from({ length: count }, async (_, k) => {
    const i = first + k
    const w = i % workers
    const mine = urls.slice(w * perWorker, (w + 1) * perWorker)
    try {
      const { repo, serverStorage, handles } = await fetchAll(url, `${dir}/phone-${i}`, mine)
      await untilServerHas(handles, serverStorage)
      return { i, repo, serverStorage, handle: handles[i % perWorker] }
    } catch (e) {
      return { failed: `peer ${i} could not fetch its documents: ${e.message || e}` }
    }
  }))
  const peers = setup.filter((p) => !p.failed)
  const setupErrors = setup.filter((p) => p.failed).map((p) => p.failed)
  await Promise.all(peers.map((p) => p.repo.flush()))
  console.log(JSON.stringify({ ready: peers.length, setup_errors: setupErrors.length, setup_ms: performance.now() - t0 }))
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
  const late = results.length - latencies.length
  const errors = late + setupErrors.length
  console.log(JSON.stringify({
    mode, peers: count, latencies_ms: latencies, errors, setup_errors: setupErrors.length,
    first_error: setupErrors[0] || (late > 0 ? `server did not show the change within ${perPeerMs} ms` : null),
    wall_ms: Math.max(0, ...results.map((r) => r.ms)), peak_kb: vmHwmKb(), repo_retries: repoRetries,
  }))
  await Promise.all(peers.map((p) => p.repo.flush()))
  process.exit(0)
}

// The link is cut part way: keep what arrived (flushed to storage) and stop, as a phone losing
// its signal would; `resync` on the same folder is the resumed sync.
async function downloadCut(url, urls, t0) {
  const { repo, adapter } = await connected(url)
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
  if (mode === "download-cut") return downloadCut(url, urls, t0)
  const { repo, serverStorage, handles } = await fetchAll(url, dir, mode === "change" ? urls.slice(0, Number(rest[2])) : urls)
  if (mode === "upload" || mode === "resync") {
    if (mode === "upload") {
      await untilServerHas(handles, serverStorage)
    } else {
      // Holding every document, this peer learns what changed only by syncing each of them.
      await untilServerHas(handles, serverStorage)
    }
  } else if (mode === "download") {
    await repo.flush()
  } else if (mode === "change") {
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
  console.log(JSON.stringify({ mode, docs: urls.length, ms, peak_kb: vmHwmKb(), repo_retries: repoRetries }))
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(1) })

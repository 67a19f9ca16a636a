// JVM tests of the shared session logic, through the generated Kotlin bindings and the real
// cdylib (JNA), against a real fieldcase-server on 127.0.0.1 over TLS (the bindings crate's
// test_server example, FIELDCASE_TEST_SERVER). Plain `main`: prints "N passed, M failed" and
// exits non-zero on failure. Run by scripts/kotlin-test.
package org.fieldcase.shell

import java.io.BufferedReader
import java.io.InputStreamReader
import java.nio.file.Files
import java.security.SecureRandom
import kotlin.random.Random
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import org.fieldcase.ffi.DeviceOptions
import org.fieldcase.ffi.FieldcaseException
import org.fieldcase.ffi.KeyStore
import org.fieldcase.ffi.KeyStoreException
import org.fieldcase.ffi.NoteKind
import org.fieldcase.ffi.TaskStatus
import org.fieldcase.ffi.TaskUpdate
import org.fieldcase.ffi.TimelineEntry
import org.fieldcase.ffi.UnlockNeeds
import org.fieldcase.ffi.checkPanicBoundary

/** The test_server example as a child process: one JSON line per command. */
class TestServer {
    private val proc: Process = ProcessBuilder(System.getenv("FIELDCASE_TEST_SERVER") ?: error("FIELDCASE_TEST_SERVER unset"))
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start()
    private val out = BufferedReader(InputStreamReader(proc.inputStream))
    val info: Map<String, String> = parse(out.readLine() ?: error("test server did not start"))

    fun command(line: String): Map<String, String> {
        proc.outputStream.write("$line\n".toByteArray())
        proc.outputStream.flush()
        return parse(out.readLine() ?: error("test server stopped"))
    }

    fun code(): String = command("code").getValue("code")

    /** Confirms a newly enrolled phone by the key fingerprint it shows, as an admin does. */
    fun confirm(session: FieldcaseSession) {
        command("confirm ${session.identity().deviceId} ${session.keyFingerprint()}")
    }

    fun stop() {
        runCatching { command("quit") }
        proc.outputStream.close()
        proc.waitFor()
    }

    companion object {
        // The server prints flat JSON objects of strings and booleans: no JSON library needed.
        private val field = Regex("\"([a-z_]+)\":(\"([^\"]*)\"|true|false)")
        fun parse(line: String): Map<String, String> =
            field.findAll(line).associate { it.groupValues[1] to (it.groupValues[3].ifEmpty { it.groupValues[2] }) }
    }
}

/** The platform keystore, played by the test. */
class MemoryKeyStore(var key: ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) }) : KeyStore {
    var destroyed = false
    override fun rootKey(): ByteArray {
        if (destroyed) throw KeyStoreException.Unavailable("destroyed")
        return key
    }
    override fun destroyKey() {
        destroyed = true
    }
}

/** A sleeper that only records what it was asked to wait. */
class RecordingSleeper(private val onSleep: (Int) -> Unit = {}) : Sleeper {
    val sleeps = mutableListOf<Long>()
    override fun sleep(millis: Long) {
        sleeps.add(millis)
        onSleep(sleeps.size)
    }
}

class ManualClock(var now: Long = 1_000_000) : Clock {
    override fun nowMillis() = now
}

val FAST = DeviceOptions(10u.toUByte())
const val PASSPHRASE = "plum kettle orbit sparrow"

class Tests(private val server: TestServer) {
    private val caseId = server.info.getValue("case_id")
    private val taskId = server.info.getValue("task_id")

    private fun enroll(
        keys: KeyStore = MemoryKeyStore(),
        passphrase: String? = PASSPHRASE,
        clock: Clock = SystemClock,
        dir: String = Files.createTempDirectory("fieldcase-kt-").toString(),
    ): FieldcaseSession {
        return FieldcaseSession.enroll(
            dir, server.info.getValue("url"), server.info.getValue("fingerprint"), server.code(),
            keys, passphrase, FAST, clock,
        ).also { server.confirm(it) }
    }

    private fun synced(): FieldcaseSession = enroll().also { assertTrue(it.syncNow() is SyncOutcome.Synced) }

    fun enrollUnlockAndLists() {
        val keys = MemoryKeyStore()
        val dir = Files.createTempDirectory("fieldcase-kt-").toString()
        val first = FieldcaseSession.enroll(
            dir, server.info.getValue("url"), server.info.getValue("fingerprint"), server.code(),
            keys, PASSPHRASE, FAST,
        )
        assertEquals(SessionState.Unlocked, first.state)
        // A new phone waits until the office confirms the key fingerprint it shows.
        val waiting = first.syncNow()
        assertEquals(SyncOutcome.AwaitingConfirmation(first.keyFingerprint()), waiting)
        server.confirm(first)
        assertTrue(first.syncNow() is SyncOutcome.Synced)

        val session = FieldcaseSession.open(dir, keys, FAST)
        val seen = mutableListOf<SessionState>()
        session.onStateChange { seen.add(it) }
        assertEquals(SessionState.Locked, session.state)
        assertFailsWith<FieldcaseException.Locked> { session.cases() }
        // Made with a keystore and a passphrase, the store opens only with both together.
        assertEquals(UnlockNeeds(keystore = true, passphrase = true), session.unlockNeeds())
        assertFailsWith<FieldcaseException.UnlockNeeds> { session.unlockWithPassphrase(PASSPHRASE) }
        assertFailsWith<FieldcaseException.UnlockNeeds> { session.unlockWithKeystore() }
        assertFailsWith<FieldcaseException.WrongKey> { session.unlock("plum kettle orbit sparrows") }
        session.unlock(PASSPHRASE)
        assertEquals(SessionState.Unlocked, session.state)
        session.lock()
        session.unlock(PASSPHRASE)
        assertEquals(listOf<SessionState>(SessionState.Unlocked, SessionState.Locked, SessionState.Unlocked), seen)

        assertTrue(session.cases().any { it.id == caseId })
        val today = session.todayTasks(0).filter { it.taskId == taskId }
        assertEquals(1, today.size)
        assertEquals(2u, today[0].checklistTotal)
        val timeline = session.timeline(caseId)
        assertTrue(timeline.any { it is TimelineEntry.Task && it.task.id == taskId })
    }

    fun writeNoteTaskChecklistAndSync() {
        val created = server.command("case K-0400")
        val (case, task) = created.getValue("case_id") to created.getValue("task_id")
        val a = synced()
        val b = synced()
        val noteId = a.writeNote(case, "Went with the client to the registry office.", taskId = task)
        a.editNote(case, noteId, "Went with the client; the form was accepted.")
        a.updateTask(case, task, TaskUpdate(TaskStatus.DONE, "filed", null, null))
        val item = a.case(case).tasks.single().checklist.first()
        a.setChecklistItem(case, task, item.id, true)
        a.addChecklistItem(case, task, "two photos")
        assertTrue(a.syncStatus.pendingChanges > 0)
        val outcome = a.syncNow()
        assertTrue(outcome is SyncOutcome.Synced && outcome.report.casesUploaded == 1u)
        assertEquals(0, a.syncStatus.pendingChanges)

        b.syncNow()
        val seen = b.case(case)
        assertEquals("Went with the client; the form was accepted.", seen.notes.single().body)
        assertEquals(TaskStatus.DONE, seen.tasks.single().status)
        assertEquals(3, seen.tasks.single().checklist.size)
        assertTrue(seen.tasks.single().checklist.first { it.id == item.id }.done)
    }

    fun offlineEditsMergeAndConflicts() {
        val created = server.command("case K-0500")
        val (case, task) = created.getValue("case_id") to created.getValue("task_id")
        val a = synced()
        val b = synced()
        server.command("offline")
        try {
            assertTrue(a.syncNow() is SyncOutcome.Offline)
            a.writeNote(case, "Called the client.", kind = NoteKind.CALL)
            a.updateTask(case, task, TaskUpdate(null, "postponed", null, null))
            b.writeNote(case, "Met at the day centre.")
            b.updateTask(case, task, TaskUpdate(null, "did not come", null, null))
        } finally {
            server.command("online")
        }
        for (s in listOf(a, b, a)) assertTrue(s.syncNow() is SyncOutcome.Synced)
        assertEquals(a.case(case), b.case(case))
        assertEquals(2, a.case(case).notes.size)
        val conflict = a.conflicts(case).single { it.field == "outcome" && it.taskId == task }
        assertEquals(listOf("did not come", "postponed"), conflict.values.map { it.value }.sorted())
        assertTrue(conflict.sensitive, "a task's outcome waits in the office's conflict inbox")
        assertTrue(conflict.values.all { it.at != null }, "each value says when it was written")
    }

    fun backoffWhileOfflineThenRecovers() {
        val clock = ManualClock()
        val session = enroll(clock = clock)
        assertTrue(session.syncNow() is SyncOutcome.Synced)
        val backoff = Backoff(baseMillis = 1_000, maxMillis = 8_000, random = Random(42))
        val loop = BackgroundSync(session, RecordingSleeper(), backoff, intervalMillis = 60_000, clock = clock)
        session.writeNote(caseId, "Written with no signal.")
        server.command("offline")
        val delays = try {
            (1..6).map { assertNotNull(loop.step()) }
        } finally {
            server.command("online")
        }
        assertEquals(6, session.syncStatus.consecutiveFailures)
        delays.forEachIndexed { i, d ->
            val cap = backoff.capFor(i + 1)
            assertTrue(d in cap / 2..cap, "delay $d after ${i + 1} failures outside [${cap / 2}, $cap]")
        }
        assertEquals(listOf(1_000L, 2_000L, 4_000L, 8_000L, 8_000L, 8_000L), (1..6).map { backoff.capFor(it) })
        assertEquals(clock.now + delays.last(), session.syncStatus.nextAttemptAtMillis)
        assertTrue(session.syncStatus.pendingChanges > 0)

        assertEquals(60_000L, loop.step())
        assertEquals(0, session.syncStatus.consecutiveFailures)
        assertEquals(0, session.syncStatus.pendingChanges)
        assertEquals(clock.now, session.syncStatus.lastSuccessAtMillis)
    }

    fun backgroundLoopOnItsThreadStopsWhenWiped() {
        val session = synced()
        val sleeper = RecordingSleeper { n -> if (n == 3) session.wipe() }
        val loop = BackgroundSync(session, sleeper, Backoff(random = Random(1)), intervalMillis = 10)
        val t = Thread { loop.runLoop() }
        t.start()
        t.join(30_000)
        assertTrue(!t.isAlive, "the loop did not stop")
        assertEquals(SessionState.Wiped, session.state)
        assertEquals(3, sleeper.sleeps.size)
        assertFailsWith<FieldcaseException.NoStore> { session.cases() }
    }

    fun revokedPhoneWipesAndStops() {
        val keys = MemoryKeyStore()
        val dir = Files.createTempDirectory("fieldcase-kt-").toString()
        val session = enroll(keys = keys, dir = dir)
        assertTrue(session.syncNow() is SyncOutcome.Synced)
        val seen = mutableListOf<SessionState>()
        session.onStateChange { seen.add(it) }
        session.writeNote(caseId, "Written just before the phone was lost.")
        server.command("revoke ${session.identity().deviceId}")

        val loop = BackgroundSync(session, RecordingSleeper(), Backoff(random = Random(3)))
        assertEquals(null, loop.step())
        assertEquals(SessionState.Revoked, session.state)
        assertEquals(listOf<SessionState>(SessionState.Revoked), seen)
        assertTrue(keys.destroyed, "the keystore key was not destroyed")
        assertTrue(session.syncStatus.lastOutcome == SyncOutcome.Revoked)
        assertFailsWith<FieldcaseException.RevokedAndWiped> { session.cases() }
        assertFailsWith<FieldcaseException.RevokedAndWiped> { session.unlock(PASSPHRASE) }
        assertEquals(SessionState.Revoked, session.state)
        assertFailsWith<FieldcaseException.NoStore> { FieldcaseSession.open(dir, keys, FAST) }
    }

    /** A phone away while the office replaced its certificate: its own office, since rotating
     *  would strand the other tests' phones. */
    fun certificateChangedThenRepinned() {
        val office = TestServer()
        try {
            val s = FieldcaseSession.enroll(
                Files.createTempDirectory("fieldcase-kt-").toString(), office.info.getValue("url"),
                office.info.getValue("fingerprint"), office.code(), MemoryKeyStore(), null, FAST,
            )
            office.confirm(s)
            assertTrue(s.syncNow() is SyncOutcome.Synced)
            val next = office.command("rotate").getValue("fingerprint")
            val changed = s.syncNow()
            assertEquals(SyncOutcome.CertificateChanged(next), changed)
            assertEquals(changed, s.syncStatus.lastOutcome)
            assertFailsWith<FieldcaseException.InvalidInput> { s.repin("not a fingerprint") }
            assertTrue(s.syncNow() is SyncOutcome.CertificateChanged)
            s.repin(next.chunked(2).joinToString(":").uppercase())
            assertTrue(s.syncNow() is SyncOutcome.Synced)
            assertEquals(0, s.syncStatus.consecutiveFailures)
        } finally {
            office.stop()
        }
    }

    fun typedErrors() {
        val s = synced()
        val e = assertFailsWith<FieldcaseException.InvalidInput> { s.writeNote(caseId, "  ") }
        assertTrue(e.detail.contains("empty"))
        assertFailsWith<FieldcaseException.InvalidInput> { s.timeline("nope") }
        assertFailsWith<FieldcaseException.NotFound> { s.case("0190f5a0-0000-7000-8000-000000000000") }
        assertFailsWith<FieldcaseException.PinMismatch> {
            FieldcaseSession.enroll(
                Files.createTempDirectory("fieldcase-kt-").toString(), server.info.getValue("url"),
                "00".repeat(32), server.code(), MemoryKeyStore(), null, FAST,
            )
        }
        s.lock()
        assertFailsWith<FieldcaseException.Locked> { s.todayTasks(0) }
        assertEquals(SessionState.Locked, s.state)
        assertTrue(s.syncNow() is SyncOutcome.Locked)
    }

    fun panicBoundary() {
        val session = synced()
        repeat(3) {
            val e = assertFailsWith<FieldcaseException.Internal> { checkPanicBoundary() }
            // raised inside core, caught at the boundary, reported as a typed error
            assertTrue(e.detail.contains("panic inside fieldcase-core"))
            // and the JVM, the library and an open session go on working
            assertTrue(session.syncNow() is SyncOutcome.Synced)
        }
    }

    fun aKeystoreOnlyPhoneGetsAPassphraseThenADuressPin() {
        val keys = MemoryKeyStore()
        val s = enroll(keys = keys, passphrase = null)
        assertTrue(s.syncNow() is SyncOutcome.Synced)
        assertEquals(UnlockNeeds(keystore = true, passphrase = false), s.unlockNeeds())
        assertFailsWith<FieldcaseException.InvalidInput> { s.setDuressPin("tram 9 stops at the old mill") }
        assertFailsWith<FieldcaseException.WeakPassphrase> { s.addPassphrase("qwerty2024") }
        s.addPassphrase(PASSPHRASE)
        assertEquals(UnlockNeeds(keystore = true, passphrase = true), s.unlockNeeds())
        assertFailsWith<FieldcaseException.InvalidInput> { s.addPassphrase("another long phrase of words") }
        s.lock()
        assertFailsWith<FieldcaseException.UnlockNeeds> { s.unlockWithKeystore() }
        s.unlock(PASSPHRASE)
        assertTrue(s.cases().any { it.id == caseId })
        s.setDuressPin("tram 9 stops at the old mill")
        s.lock()
        s.unlock("tram 9 stops at the old mill")
        assertEquals(emptyList(), s.cases())
    }

    fun keystoreErrors() {
        val keys = MemoryKeyStore()
        val s = enroll(keys = keys, passphrase = null)
        s.lock()
        keys.destroyed = true
        assertFailsWith<FieldcaseException.Keystore> { s.unlockWithKeystore() }
        keys.destroyed = false
        keys.key = ByteArray(32)
        assertFailsWith<FieldcaseException.WrongKey> { s.unlockWithKeystore() }
        assertEquals(SessionState.Locked, s.state)
    }
}

fun main() {
    val server = TestServer()
    val tests = Tests(server)
    val trigger = SyncTriggerTests(server)
    val progress = SyncPercentTests()
    val cases: List<Pair<String, () -> Unit>> = listOf(
        "enroll, unlock, lists, timeline" to tests::enrollUnlockAndLists,
        "note, task, checklist, sync to a second phone" to tests::writeNoteTaskChecklistAndSync,
        "offline edits on two phones merge, conflicts" to tests::offlineEditsMergeAndConflicts,
        "backoff with jitter while offline, then recovery" to tests::backoffWhileOfflineThenRecovers,
        "background loop on a thread stops when wiped" to tests::backgroundLoopOnItsThreadStopsWhenWiped,
        "a revoked phone wipes itself and stops syncing" to tests::revokedPhoneWipesAndStops,
        "a changed office certificate is reported, then repinned" to tests::certificateChangedThenRepinned,
        "typed errors" to tests::typedErrors,
        "keystore errors" to tests::keystoreErrors,
        "a keystore-only phone gets a passphrase, then a duress PIN" to
            tests::aKeystoreOnlyPhoneGetsAPassphraseThenADuressPin,
        "a panic is a typed error" to tests::panicBoundary,
        "sync trigger: success, failures, the periodic floor" to trigger::successFailureAndThePeriodicFloor,
        "sync trigger: the network returning, a flapping network" to
            trigger::theNetworkReturningRunsASyncButAFlappingOneNotOftenerThanTheGap,
        "sync trigger: locked, certificate changed, revoked, local changes" to
            trigger::lockedCertificateChangedRevokedAndLocalChanges,
        "OS-scheduled sync of a real session" to trigger::aSessionSyncsWhenTheOsRunsItAndSaysWhenNext,
        "sync progress: bytes-weighted, never back, 100 only when finished" to
            progress::bytesWeightedNeverBackAndHundredOnlyWhenFinished,
        "sync progress: a first sync of hundreds of cases fills the bar in order" to
            progress::aFirstSyncOfHundredsOfCasesFillsTheBarInOrder,
    )
    var passed = 0
    var failed = 0
    for ((name, test) in cases) {
        val start = System.nanoTime()
        try {
            test()
            passed++
            println("ok    $name (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL  $name: $e")
            e.printStackTrace(System.out)
        }
    }
    server.stop()
    println("$passed passed, $failed failed")
    if (failed != 0) kotlin.system.exitProcess(1)
}

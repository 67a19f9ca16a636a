// JVM tests of when the OS is asked to run a sync (SyncTrigger, ScheduledSync): the rules on
// their own, then a session against the real test server with a scheduler that records what
// WorkManager or BGTaskScheduler would have been told. Run from SessionTest.kt's main.
package org.fieldcase.shell

import java.nio.file.Files
import kotlin.random.Random
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import org.fieldcase.ffi.FieldcaseException

private const val MIN = 60_000L

/** What the platform's scheduler was told, in order. */
class RecordingScheduler : SyncScheduler {
    val plans = mutableListOf<SyncPlan>()
    override fun schedule(plan: SyncPlan) {
        plans.add(plan)
    }
}

class SyncTriggerTests(private val server: TestServer) {
    private fun trigger() = SyncTrigger(Backoff(random = Random(7)))

    fun successFailureAndThePeriodicFloor() {
        val t = trigger()
        val now = 10 * MIN
        // A new session syncs at once.
        assertEquals(SyncPlan.RunNow, t.plan(now))
        t.onOutcome(SyncOutcome.Synced(emptyReport()), 0, 0, now)
        assertEquals(SyncPlan.RunLater(15 * MIN), t.plan(now))
        assertEquals(SyncPlan.RunLater(5 * MIN), t.plan(now + 10 * MIN))
        assertEquals(SyncPlan.RunNow, t.plan(now + 15 * MIN))
        // Changes waiting after a sync: within a minute, not a quarter of an hour.
        t.onOutcome(SyncOutcome.Synced(emptyReport()), 0, 3, now)
        assertEquals(SyncPlan.RunLater(MIN), t.plan(now))
        // Failures back off as the session's Backoff says, and never past the periodic floor.
        val backoff = Backoff(random = Random(7))
        for (failures in 1..12) {
            t.onOutcome(SyncOutcome.Offline("no route"), failures, 0, now)
            val plan = t.plan(now) as SyncPlan.RunLater
            val cap = minOf(backoff.capFor(failures), 15 * MIN)
            assertTrue(
                plan.delayMillis in maxOf(cap / 2, t.minGapMillis)..maxOf(cap, t.minGapMillis),
                "after $failures failures: $plan",
            )
        }
        t.onOutcome(SyncOutcome.AwaitingConfirmation("3F2A"), 1, 0, now)
        assertTrue(t.plan(now) is SyncPlan.RunLater)
    }

    fun theNetworkReturningRunsASyncButAFlappingOneNotOftenerThanTheGap() {
        val t = trigger()
        val now = 100 * MIN
        t.onNetwork(false, now)
        t.onOutcome(SyncOutcome.Offline("no route"), 5, 0, now)
        val waiting = t.plan(now) as SyncPlan.RunLater
        assertTrue(waiting.delayMillis > t.minGapMillis, "$waiting")
        // Due, but no network: the OS waits for one (every later run has the network constraint).
        assertEquals(SyncPlan.RunLater(0), t.plan(now + waiting.delayMillis))
        // The network comes back 5 s after the failed attempt: due now, but not before the gap.
        t.onNetwork(true, now + 5_000)
        assertEquals(SyncPlan.RunLater(t.minGapMillis - 5_000), t.plan(now + 5_000))
        assertEquals(SyncPlan.RunNow, t.plan(now + t.minGapMillis))
        // It goes and comes back ten times in the next seconds: still one attempt per gap.
        val later = now + t.minGapMillis
        t.onOutcome(SyncOutcome.Offline("no route"), 6, 0, later)
        for (i in 1..10) {
            t.onNetwork(i % 2 == 0, later + i * 1_000L)
            assertTrue(t.plan(later + i * 1_000L) != SyncPlan.RunNow, "run $i s after an attempt")
        }
        assertEquals(SyncPlan.RunNow, t.plan(later + t.minGapMillis))
        // A returning network does not hurry a phone that is merely between periodic syncs.
        t.onOutcome(SyncOutcome.Synced(emptyReport()), 0, 0, later)
        t.onNetwork(false, later + MIN)
        t.onNetwork(true, later + 2 * MIN)
        assertEquals(SyncPlan.RunLater(13 * MIN), t.plan(later + 2 * MIN))
    }

    fun lockedCertificateChangedRevokedAndLocalChanges() {
        val t = trigger()
        val now = 1_000 * MIN
        t.onOutcome(SyncOutcome.Synced(emptyReport()), 0, 0, now)
        // Locked, with a key that needs the worker: nothing is scheduled until she unlocks.
        t.onLocked(keyNeedsUser = true)
        assertEquals(SyncPlan.WaitForUnlock, t.plan(now + 60 * MIN))
        t.onUnlocked(now + 61 * MIN)
        assertEquals(SyncPlan.RunNow, t.plan(now + 61 * MIN))
        // Locked, with a key the app may use alone: syncs go on.
        t.onLocked(keyNeedsUser = false)
        assertEquals(SyncPlan.RunNow, t.plan(now + 61 * MIN))
        t.onUnlocked(now + 61 * MIN)
        // A note written: due within a minute.
        t.onOutcome(SyncOutcome.Synced(emptyReport()), 0, 0, now + 62 * MIN)
        t.onLocalChange(now + 63 * MIN)
        assertEquals(SyncPlan.RunLater(MIN), t.plan(now + 63 * MIN))
        // The office's certificate changed: retrying will not help until the worker repins.
        t.onOutcome(SyncOutcome.CertificateChanged("ab".repeat(32)), 1, 0, now + 64 * MIN)
        assertEquals(SyncPlan.WaitForWorker, t.plan(now + 90 * MIN))
        t.onRepinned(now + 90 * MIN)
        assertEquals(SyncPlan.RunNow, t.plan(now + 90 * MIN))
        // Revoked: never again, whatever happens next.
        t.onOutcome(SyncOutcome.Revoked, 0, 0, now + 91 * MIN)
        t.onUnlocked(now + 92 * MIN)
        t.onNetwork(true, now + 92 * MIN)
        assertEquals(SyncPlan.Stop, t.plan(now + 200 * MIN))
    }

    /** A real session against the real office, with the plans a platform scheduler would get. */
    fun aSessionSyncsWhenTheOsRunsItAndSaysWhenNext() {
        val keys = MemoryKeyStore()
        val clock = ManualClock(now = 50 * MIN)
        val session = FieldcaseSession.enroll(
            Files.createTempDirectory("fieldcase-kt-").toString(), server.info.getValue("url"),
            server.info.getValue("fingerprint"), server.code(), keys, PASSPHRASE, FAST, clock,
        )
        server.confirm(session)
        val os = RecordingScheduler()
        val scheduled = ScheduledSync(session, os, SyncTrigger(Backoff(random = Random(2))), clock = clock)

        // The OS runs the worker: it syncs and asks for the next run a period later.
        assertEquals(SyncPlan.RunLater(15 * MIN), scheduled.runDue())
        assertTrue(session.syncStatus.lastOutcome is SyncOutcome.Synced)
        assertEquals(clock.now + 15 * MIN, session.syncStatus.nextAttemptAtMillis)
        // Woken early (WorkManager may): nothing is sent, the same plan stands.
        val before = session.syncStatus.lastSuccessAtMillis
        clock.now += MIN
        assertEquals(SyncPlan.RunLater(14 * MIN), scheduled.runDue())
        assertEquals(before, session.syncStatus.lastSuccessAtMillis)

        // Offline when the period is over: backoff.
        clock.now += 14 * MIN
        server.command("offline")
        val afterFailure = try {
            scheduled.runDue()
        } finally {
            server.command("online")
        }
        assertTrue(session.syncStatus.lastOutcome is SyncOutcome.Offline)
        assertTrue(afterFailure is SyncPlan.RunLater, "$afterFailure")
        // The network returns: the OS is asked to run it at once (after the gap).
        clock.now += scheduled.trigger.minGapMillis
        assertEquals(SyncPlan.RunNow, scheduled.networkChanged(true))
        assertEquals(SyncPlan.RunLater(15 * MIN), scheduled.runDue())
        assertEquals(0, session.syncStatus.consecutiveFailures)

        // A note written: the next sync within a minute.
        clock.now += MIN
        session.writeNote(server.info.getValue("case_id"), "Written between syncs.")
        assertEquals(SyncPlan.RunLater(MIN), scheduled.localChange())

        // Locked (the app went to the background; the key needs the worker): nothing scheduled,
        // and a worker woken anyway sends nothing.
        session.lock()
        assertEquals(SyncPlan.WaitForUnlock, scheduled.locked())
        clock.now += 20 * MIN
        val attempts = session.syncStatus.lastOutcome
        assertEquals(SyncPlan.WaitForUnlock, scheduled.runDue())
        assertTrue(session.syncStatus.lastOutcome === attempts, "a locked phone tried to sync")
        session.unlock(PASSPHRASE)
        assertEquals(SyncPlan.RunNow, scheduled.unlocked())
        assertEquals(SyncPlan.RunLater(15 * MIN), scheduled.runDue())
        assertEquals(0, session.syncStatus.pendingChanges)

        // Revoked at the office: the next run wipes the phone and cancels every later one.
        server.command("revoke ${session.identity().deviceId}")
        clock.now += 15 * MIN
        assertEquals(SyncPlan.Stop, scheduled.runDue())
        assertEquals(SessionState.Revoked, session.state)
        assertEquals(SyncPlan.Stop, scheduled.networkChanged(true))
        assertEquals(SyncPlan.Stop, os.plans.last())
        assertTrue(keys.destroyed, "core destroyed the keystore key")
        try {
            session.cases()
            error("a revoked session still reads")
        } catch (e: FieldcaseException.RevokedAndWiped) {
        }
    }

    private fun emptyReport() = org.fieldcase.ffi.SyncReport(0u, 0uL, 0uL, 0u, 0u, 0u)
}

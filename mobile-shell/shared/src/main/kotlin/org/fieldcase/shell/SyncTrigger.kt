// When to ask the operating system to run a sync: pure logic, no Android or iOS type, so that it
// is tested on the JVM. The app feeds it what happens (a sync's outcome, the network coming and
// going, the store locked or unlocked, a local change) and hands each resulting SyncPlan to the
// platform's scheduler: Android's WorkManager (one unique work request with a network
// constraint), iOS's BGTaskScheduler (an app-refresh request with its earliest begin date).
// Nothing here sleeps or polls: the OS wakes the app when the plan says.
package org.fieldcase.shell

/** What the platform's scheduler should do next. */
sealed interface SyncPlan {
    /** Run a sync now: the network is there and nothing holds it back. */
    data object RunNow : SyncPlan

    /**
     * Ask the OS to run a sync no earlier than [delayMillis] from now, and only with a network
     * (WorkManager: `setInitialDelay` and `NetworkType.CONNECTED`; iOS: `earliestBeginDate`).
     */
    data class RunLater(val delayMillis: Long) : SyncPlan

    /** Schedule nothing until the worker unlocks: the store is locked and its key needs her. */
    data object WaitForUnlock : SyncPlan

    /**
     * Schedule nothing until the worker acts: the office showed a certificate this phone does
     * not trust, and retrying will not help until she repins it.
     */
    data object WaitForWorker : SyncPlan

    /** Never again (the phone was revoked or wiped): cancel any scheduled sync. */
    data object Stop : SyncPlan
}

/** What the trigger knows; every field is what the last event said. */
data class TriggerState(
    /** Whether the phone has a network (the platform's connectivity callback). */
    val networkAvailable: Boolean = true,
    /** Whether the store is locked. */
    val locked: Boolean = false,
    /**
     * Whether unlocking needs the worker (her passphrase, or a keystore key usable only right
     * after she authenticated, as the shells create it): then a locked phone cannot sync in the
     * background, and nothing is scheduled while it is locked.
     */
    val keyNeedsUser: Boolean = true,
    /** When the last sync was attempted. */
    val lastAttemptAtMillis: Long? = null,
    /** When the next sync is due (null: now). */
    val dueAtMillis: Long? = null,
    /** The last outcome: [SyncOutcome.Offline] makes a returning network run a sync at once. */
    val lastOutcome: SyncOutcome? = null,
    /** Revoked or wiped: nothing more, ever. */
    val final: Boolean = false,
)

/**
 * The trigger rules:
 * - a revoked or wiped phone stops; a locked store whose key needs the worker waits for her to
 *   unlock (a sync then is due at once); a changed office certificate waits for her to repin;
 * - after a successful sync the next is due after [periodicMillis] (the periodic floor: never
 *   longer between attempts), or [pendingMillis] when local changes are waiting;
 * - after a failure (offline, refused, not yet confirmed) it is due after the session's
 *   [Backoff] for that many failures in a row, drawn once when the outcome is recorded;
 * - when the network returns after an offline attempt, or local changes are written, a sync is
 *   due sooner; but never two attempts closer than [minGapMillis] (a flapping network);
 * - every later run needs a network; none waits longer than [periodicMillis].
 */
class SyncTrigger(
    private val backoff: Backoff = Backoff(),
    val periodicMillis: Long = 15 * 60_000,
    val pendingMillis: Long = 60_000,
    val minGapMillis: Long = 30_000,
    initial: TriggerState = TriggerState(),
) {
    init {
        require(periodicMillis > 0 && pendingMillis in 0..periodicMillis && minGapMillis in 0..periodicMillis)
    }

    @Volatile
    var state: TriggerState = initial
        private set

    private fun update(change: (TriggerState) -> TriggerState) = synchronized(this) { state = change(state) }

    /** A sync ended with [outcome] after [failures] failures in a row, [pending] changes left. */
    fun onOutcome(outcome: SyncOutcome, failures: Int, pending: Int, nowMillis: Long) = update { s ->
        val due = when (outcome) {
            is SyncOutcome.Synced -> nowMillis + if (pending > 0) pendingMillis else periodicMillis
            is SyncOutcome.Offline, is SyncOutcome.Failed, is SyncOutcome.AwaitingConfirmation ->
                nowMillis + backoff.delayFor(maxOf(failures, 1))
            // Due again once unlocked (the lock itself holds it back), or once repinned.
            SyncOutcome.Locked, is SyncOutcome.CertificateChanged -> nowMillis
            SyncOutcome.Revoked -> null
        }
        s.copy(
            lastAttemptAtMillis = nowMillis,
            dueAtMillis = due,
            lastOutcome = outcome,
            locked = s.locked || outcome == SyncOutcome.Locked,
            final = s.final || outcome == SyncOutcome.Revoked,
        )
    }

    /** The network came or went. A returning network after an offline attempt makes a sync due. */
    fun onNetwork(available: Boolean, nowMillis: Long) = update { s ->
        val back = available && s.lastOutcome is SyncOutcome.Offline
        s.copy(networkAvailable = available, dueAtMillis = if (back) nowMillis else s.dueAtMillis)
    }

    /** The worker unlocked the store: a sync is due now. */
    fun onUnlocked(nowMillis: Long) = update { it.copy(locked = false, dueAtMillis = nowMillis) }

    /** The store was locked; [keyNeedsUser] says whether unlocking it needs the worker. */
    fun onLocked(keyNeedsUser: Boolean) = update { it.copy(locked = true, keyNeedsUser = keyNeedsUser) }

    /** A change was written on the phone: due within [pendingMillis] (sooner stays sooner). */
    fun onLocalChange(nowMillis: Long) = update { s ->
        val soon = nowMillis + pendingMillis
        s.copy(dueAtMillis = minOf(s.dueAtMillis ?: soon, soon))
    }

    /** The worker repinned the office's certificate: a sync is due now. */
    fun onRepinned(nowMillis: Long) = update {
        it.copy(lastOutcome = null, dueAtMillis = nowMillis)
    }

    /** The phone was wiped on this phone (panic wipe): nothing more, ever. */
    fun onWiped() = update { it.copy(final = true) }

    /** What the platform's scheduler should do now. */
    fun plan(nowMillis: Long): SyncPlan = plan(state, nowMillis)

    /** What the platform's scheduler should do in [s] at [nowMillis]. */
    fun plan(s: TriggerState, nowMillis: Long): SyncPlan {
        if (s.final) return SyncPlan.Stop
        if (s.locked && s.keyNeedsUser) return SyncPlan.WaitForUnlock
        if (s.lastOutcome is SyncOutcome.CertificateChanged) return SyncPlan.WaitForWorker
        val due = s.dueAtMillis ?: nowMillis
        val gap = s.lastAttemptAtMillis?.let { it + minGapMillis } ?: nowMillis
        val wait = (maxOf(due, gap) - nowMillis).coerceIn(0, periodicMillis)
        return if (wait == 0L && s.networkAvailable) SyncPlan.RunNow else SyncPlan.RunLater(wait)
    }
}

/** The platform's scheduler: WorkManager on Android, BGTaskScheduler on iOS. */
fun interface SyncScheduler {
    /** Replaces whatever sync was scheduled with what [plan] says. */
    fun schedule(plan: SyncPlan)
}

/**
 * A session's syncs run by the OS: the platform's worker calls [runDue] when it wakes the app,
 * and the app reports what happens ([networkChanged], [unlocked], [locked], [localChange],
 * [repinned]); each of them hands the next plan to [scheduler]. Replaces [BackgroundSync]'s own
 * thread in the apps.
 */
class ScheduledSync(
    private val session: FieldcaseSession,
    private val scheduler: SyncScheduler,
    val trigger: SyncTrigger = SyncTrigger(),
    private val keyNeedsUser: Boolean = true,
    private val clock: Clock = SystemClock,
) {
    init {
        // What the store needs is known from the start; an unlocked session is due a sync now.
        trigger.onLocked(keyNeedsUser)
        when {
            session.state.isFinal() -> trigger.onWiped()
            session.state != SessionState.Locked -> trigger.onUnlocked(clock.nowMillis())
        }
    }

    private fun reschedule(): SyncPlan = trigger.plan(clock.nowMillis()).also {
        session.scheduled(
            (it as? SyncPlan.RunLater)?.let { later -> clock.nowMillis() + later.delayMillis }
                ?: if (it == SyncPlan.RunNow) clock.nowMillis() else null,
        )
        scheduler.schedule(it)
    }

    /**
     * What the OS's worker runs: a sync if one is due (unlocking first with the keystore alone
     * when the key does not need the worker), then the next plan, scheduled and returned.
     */
    fun runDue(): SyncPlan {
        if (session.state.isFinal()) trigger.onWiped()
        if (trigger.plan(clock.nowMillis()) != SyncPlan.RunNow) return reschedule()
        var unlockedHere = false
        if (session.state == SessionState.Locked && !keyNeedsUser) {
            unlockedHere = runCatching { session.unlockWithKeystore() }.isSuccess
        }
        val outcome = session.syncNow()
        if (unlockedHere) runCatching { session.lock() }
        val status = session.syncStatus
        trigger.onOutcome(outcome, status.consecutiveFailures, status.pendingChanges, clock.nowMillis())
        if (session.state == SessionState.Locked) trigger.onLocked(keyNeedsUser)
        return reschedule()
    }

    /** The platform's connectivity callback. */
    fun networkChanged(available: Boolean): SyncPlan {
        trigger.onNetwork(available, clock.nowMillis())
        return reschedule()
    }

    /** The worker unlocked the store. */
    fun unlocked(): SyncPlan {
        trigger.onUnlocked(clock.nowMillis())
        return reschedule()
    }

    /** The store was locked (the app went to the background). */
    fun locked(): SyncPlan {
        trigger.onLocked(keyNeedsUser)
        return reschedule()
    }

    /** A note or task was written on the phone. */
    fun localChange(): SyncPlan {
        trigger.onLocalChange(clock.nowMillis())
        return reschedule()
    }

    /** The worker repinned the office's certificate. */
    fun repinned(): SyncPlan {
        trigger.onRepinned(clock.nowMillis())
        return reschedule()
    }

    /** The phone was wiped: cancels every scheduled sync. */
    fun wiped(): SyncPlan {
        trigger.onWiped()
        return reschedule()
    }
}

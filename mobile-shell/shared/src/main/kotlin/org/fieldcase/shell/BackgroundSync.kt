// Background sync with exponential backoff and jitter while offline. The clock, the sleeper and
// the random source are injected, so tests step the loop without sleeping.
package org.fieldcase.shell

import kotlin.random.Random

/** Waits; the app's is Thread.sleep (or WorkManager's scheduling), tests record instead. */
fun interface Sleeper {
    fun sleep(millis: Long)
}

/**
 * Exponential backoff with "equal jitter": after the n-th consecutive failure (n >= 1) the delay
 * is drawn from [cap/2, cap] where cap = min(maxMillis, baseMillis * 2^(n-1)). Half the delay is
 * random so that phones that lost signal together (a whole team leaving a court building) do not
 * retry together; the other half guarantees the delay grows.
 */
class Backoff(
    val baseMillis: Long = 5_000,
    val maxMillis: Long = 15 * 60_000,
    private val random: Random = Random.Default,
) {
    init {
        require(baseMillis > 0 && maxMillis >= baseMillis)
    }

    /** The upper bound of the delay after [failures] consecutive failures. */
    fun capFor(failures: Int): Long {
        if (failures <= 0) return 0
        var cap = baseMillis
        repeat(minOf(failures - 1, 40)) {
            cap = if (cap >= maxMillis / 2) maxMillis else cap * 2
        }
        return minOf(cap, maxMillis)
    }

    /** A delay for [failures] consecutive failures. */
    fun delayFor(failures: Int): Long {
        val cap = capFor(failures)
        if (cap == 0L) return 0
        val half = cap / 2
        return half + random.nextLong(cap - half + 1)
    }
}

/**
 * The sync loop of a session: syncs every [intervalMillis] while things go well, backs off while
 * offline, stops for good when the device is revoked (or wiped), and waits while locked.
 */
class BackgroundSync(
    private val session: FieldcaseSession,
    private val sleeper: Sleeper = Sleeper { Thread.sleep(it) },
    private val backoff: Backoff = Backoff(),
    private val intervalMillis: Long = 5 * 60_000,
    private val lockedPollMillis: Long = 60_000,
    private val clock: Clock = SystemClock,
) {
    @Volatile
    private var running = false
    private var thread: Thread? = null

    /**
     * One step: syncs once, records the next attempt in the session's sync status, and returns
     * how long to wait before the next step, or null when the loop must stop (revoked, wiped).
     */
    fun step(): Long? {
        if (session.state.isFinal()) return null
        val outcome = session.syncNow()
        val delay = when (outcome) {
            is SyncOutcome.Synced -> intervalMillis
            is SyncOutcome.Offline -> backoff.delayFor(session.syncStatus.consecutiveFailures)
            is SyncOutcome.Failed -> backoff.delayFor(session.syncStatus.consecutiveFailures)
            is SyncOutcome.AwaitingConfirmation -> backoff.delayFor(session.syncStatus.consecutiveFailures)
            is SyncOutcome.CertificateChanged -> backoff.delayFor(session.syncStatus.consecutiveFailures)
            SyncOutcome.Locked -> lockedPollMillis
            SyncOutcome.Revoked -> null
        }
        session.scheduled(delay?.let { clock.nowMillis() + it })
        return delay
    }

    /** Runs [step] until [stop] or revocation, sleeping with the injected sleeper between steps. */
    fun runLoop() {
        running = true
        while (running) {
            val delay = step() ?: break
            if (!running) break
            try {
                sleeper.sleep(delay)
            } catch (e: InterruptedException) {
                break
            }
        }
        running = false
    }

    /** Starts the loop on a daemon thread. */
    fun start() {
        if (thread?.isAlive == true) return
        thread = Thread({ runLoop() }, "fieldcase-sync").apply {
            isDaemon = true
            start()
        }
    }

    /** Asks the loop to stop after the current step (an interrupted sleep ends it at once). */
    fun stop() {
        running = false
        thread?.interrupt()
    }
}

// The shared session logic of the fieldcase apps: plain Kotlin over the generated bindings, no
// Android dependency, compiled and tested on the JVM (scripts/kotlin-test).
//
// A screen talks to one FieldcaseSession. It owns the unlock state, the lists (today's tasks,
// cases), note writing and task edits, the sync status, and the switch to the "this device was
// revoked and wiped" state, which is final. Rules about the data stay in Rust; this layer only
// decides what the app shows next.
package org.fieldcase.shell

import org.fieldcase.ffi.AssistanceTag
import org.fieldcase.ffi.Author
import org.fieldcase.ffi.CaseSummary
import org.fieldcase.ffi.Conflict
import org.fieldcase.ffi.DeviceOptions
import org.fieldcase.ffi.FieldcaseDevice
import org.fieldcase.ffi.FieldcaseDeviceInterface
import org.fieldcase.ffi.FieldcaseException
import org.fieldcase.ffi.KeyStore
import org.fieldcase.ffi.NewNote
import org.fieldcase.ffi.NoteKind
import org.fieldcase.ffi.SyncProgress
import org.fieldcase.ffi.SyncProgressListener
import org.fieldcase.ffi.SyncReport
import org.fieldcase.ffi.TaskSummary
import org.fieldcase.ffi.TaskUpdate
import org.fieldcase.ffi.TimelineEntry
import org.fieldcase.ffi.UnlockNeeds
import org.fieldcase.ffi.Case

/** What the app shows as a whole. */
sealed interface SessionState {
    /** The store is locked: show the unlock screen. */
    data object Locked : SessionState

    /** Unlocked: the screens work. */
    data object Unlocked : SessionState

    /** Unlock refused until the phone syncs with the office (offline lease expired). */
    data object LeaseExpired : SessionState

    /** The office revoked this phone and its store was wiped: only the revoked screen remains. */
    data object Revoked : SessionState

    /** The store was wiped on this phone (panic wipe): only enrollment can follow. */
    data object Wiped : SessionState
}

/** True for the states no call can leave. */
fun SessionState.isFinal(): Boolean = this == SessionState.Revoked || this == SessionState.Wiped

/** The result of one sync attempt, as the sync status screen shows it. */
sealed interface SyncOutcome {
    /** Synced; [report] says what moved. */
    data class Synced(val report: SyncReport) : SyncOutcome

    /** The office could not be reached (or asked to retry later): nothing lost, retry with backoff. */
    data class Offline(val message: String) : SyncOutcome

    /** The office refused for good (code unknown, pin mismatch...): retrying will not help. */
    data class Failed(val message: String) : SyncOutcome

    /**
     * The office has not yet confirmed this new phone: show [fingerprint] so that the admin can
     * compare it with the one the office lists, and retry (with backoff) until she has.
     */
    data class AwaitingConfirmation(val fingerprint: String) : SyncOutcome

    /**
     * The office showed a certificate this phone does not trust: it may have replaced its
     * certificate while the phone was away. Show [serverShows]; once the worker has compared it
     * with the fingerprint the office gives her in person or by phone, [FieldcaseSession.repin]
     * it and sync again. Retrying alone will not help.
     */
    data class CertificateChanged(val serverShows: String) : SyncOutcome

    /** The store is locked: nothing was sent. */
    data object Locked : SyncOutcome

    /** The device was revoked and wiped. */
    data object Revoked : SyncOutcome
}

/** What the sync status screen shows. */
data class SyncStatus(
    val lastSuccessAtMillis: Long? = null,
    val lastOutcome: SyncOutcome? = null,
    val consecutiveFailures: Int = 0,
    val nextAttemptAtMillis: Long? = null,
    val pendingChanges: Int = 0,
    /**
     * While a sync followed with progress runs, its percentage ([SyncPercent]); null otherwise.
     */
    val progressPercent: Int? = null,
)

/** Time, replaceable in tests. */
fun interface Clock {
    fun nowMillis(): Long
}

/** The system clock. */
object SystemClock : Clock {
    override fun nowMillis(): Long = System.currentTimeMillis()
}

/**
 * One phone's session over the bindings. Thread-safe: the device serialises store access, and
 * the state here is guarded by this object's monitor. Calls block (run them off the UI thread).
 */
class FieldcaseSession(
    private val device: FieldcaseDeviceInterface,
    private val keyStore: KeyStore?,
    private val clock: Clock = SystemClock,
) {
    private val listeners = mutableListOf<(SessionState) -> Unit>()

    @Volatile
    var state: SessionState = if (device.isUnlocked()) SessionState.Unlocked else SessionState.Locked
        private set

    @Volatile
    var syncStatus: SyncStatus = SyncStatus()
        private set

    /** Calls [listener] on every state change (from the thread that caused it). */
    fun onStateChange(listener: (SessionState) -> Unit) {
        synchronized(listeners) { listeners.add(listener) }
    }

    private fun moveTo(next: SessionState) {
        val changed = synchronized(this) {
            if (state.isFinal() || state == next) {
                false
            } else {
                state = next
                true
            }
        }
        if (changed) synchronized(listeners) { listeners.toList() }.forEach { it(next) }
    }

    /**
     * Runs a device call, turning the errors that change what the app shows into state changes;
     * everything else is rethrown for the screen to show.
     */
    private fun <T> guarded(call: () -> T): T {
        when (state) {
            SessionState.Revoked -> throw FieldcaseException.RevokedAndWiped()
            SessionState.Wiped -> throw FieldcaseException.NoStore()
            else -> {}
        }
        try {
            return call()
        } catch (e: FieldcaseException.RevokedAndWiped) {
            revoked()
            throw e
        } catch (e: FieldcaseException.NoStore) {
            moveTo(SessionState.Wiped)
            throw e
        } catch (e: FieldcaseException.Locked) {
            moveTo(SessionState.Locked)
            throw e
        } catch (e: FieldcaseException.LeaseExpired) {
            moveTo(SessionState.LeaseExpired)
            throw e
        }
    }

    /**
     * Wipes the store on this phone now (a worker in danger, the phone about to be taken):
     * crypto-shreds the store and destroys the keystore key (core does both), with no network.
     * What it leaves for the office is sealed to the office's key; it is sent at once if the
     * office can be reached ([sendWipeReceipt] again later while the app runs; after a restart,
     * the next enrollment sends it). Final.
     */
    fun wipe() {
        device.panicWipe(keyStore)
        moveTo(SessionState.Wiped)
        sendWipeReceipt()
    }

    /**
     * Sends what a wipe left for the office (the device remembers the office's address in
     * memory only). True when the office took it; false when there was nothing to send or the
     * office could not be reached (call again later).
     */
    fun sendWipeReceipt(): Boolean = runCatching { device.sendWipeReceipt() }.getOrDefault(false)

    /**
     * Core obeyed the office's signed wipe order: the store and the keystore key are gone (core
     * destroyed the key itself); the session ends in [SessionState.Revoked].
     */
    private fun revoked() {
        moveTo(SessionState.Revoked)
    }

    /** Who this phone is (worker and device ids), for the about screen. */
    fun identity(): Author = guarded { device.identity() }

    /** What the store opens with: the unlock screen asks for the passphrase only when needed. */
    fun unlockNeeds(): UnlockNeeds = guarded { device.unlockNeeds() }

    /**
     * Unlocks with what the store needs: the keystore key (the platform may first want the
     * worker to authenticate: [FieldcaseException.AuthenticationRequired], show its prompt and
     * call again) and, for a store with a passphrase, [passphrase] too. A wrong passphrase is
     * [FieldcaseException.WrongKey]; too many in a row, [FieldcaseException.TooManyAttempts].
     */
    fun unlock(passphrase: String?) {
        guarded { device.unlock(keyStore, passphrase) }
        moveTo(SessionState.Unlocked)
    }

    /** Unlocks a store that opens with the platform keystore's key alone. */
    fun unlockWithKeystore() {
        val ks = keyStore ?: throw IllegalStateException("this session has no keystore")
        guarded { device.unlockWithKeystore(ks) }
        moveTo(SessionState.Unlocked)
    }

    /** Unlocks a store made without a keystore with the worker's passphrase. */
    fun unlockWithPassphrase(passphrase: String) {
        guarded { device.unlockWithPassphrase(passphrase) }
        moveTo(SessionState.Unlocked)
    }

    /**
     * Adds [passphrase] to a phone enrolled with the keystore key alone: from then on it opens
     * only with the keystore key and the passphrase together ([unlockNeeds] says so), and a
     * duress PIN can be set. [FieldcaseException.WeakPassphrase] for a weak one (show its
     * detail); [FieldcaseException.InvalidInput] when the phone has a passphrase already.
     */
    fun addPassphrase(passphrase: String) {
        val ks = keyStore ?: throw IllegalStateException("this session has no keystore")
        guarded { device.addPassphrase(ks, passphrase) }
    }

    /**
     * Sets the duress PIN: typed at unlock instead of the passphrase when the worker is forced
     * to open the phone, it destroys the cases at once and opens a phone that looks as if none
     * were assigned yet; the office is told at the next sync. As strong as a passphrase, and
     * not the passphrase; needs a phone with a passphrase ([addPassphrase] first).
     */
    fun setDuressPin(pin: String) = guarded { device.setDuressPin(keyStore, pin) }

    /** Locks (the app went to the background). */
    fun lock() {
        guarded { device.lock() }
        moveTo(SessionState.Locked)
    }

    /** Today's tasks in the phone's current UTC offset. */
    fun todayTasks(utcOffsetMinutes: Int = currentOffsetMinutes()): List<TaskSummary> =
        guarded { device.todayTasks(utcOffsetMinutes) }

    /** Open tasks of the next [days] days. */
    fun upcomingTasks(days: UInt = 7u): List<TaskSummary> = guarded { device.upcomingTasks(days) }

    /** Every case on the phone, most recently active first. */
    fun cases(): List<CaseSummary> = guarded { device.listCases() }

    /** One whole case. */
    fun case(caseId: String): Case = guarded { device.case(caseId) }

    /** A case's notes and tasks in time order. */
    fun timeline(caseId: String): List<TimelineEntry> = guarded { device.timeline(caseId) }

    /** The fields of a case that hold concurrent values. */
    fun conflicts(caseId: String): List<Conflict> = guarded { device.conflicts(caseId) }

    /** Writes a visit note; durable on return. Returns its id. */
    fun writeNote(
        caseId: String,
        body: String,
        kind: NoteKind = NoteKind.VISIT,
        tags: List<AssistanceTag> = emptyList(),
        taskId: String? = null,
    ): String = guarded { device.writeNote(caseId, NewNote(kind, body, tags, taskId)) }
        .also { refreshPending() }

    /** Replaces a note's body. */
    fun editNote(caseId: String, noteId: String, body: String) {
        guarded { device.editNote(caseId, noteId, body) }
        refreshPending()
    }

    /** Changes a task's status, outcome, follow-up date or time. */
    fun updateTask(caseId: String, taskId: String, update: TaskUpdate) {
        guarded { device.updateTask(caseId, taskId, update) }
        refreshPending()
    }

    /** Ticks or unticks a checklist item. */
    fun setChecklistItem(caseId: String, taskId: String, itemId: String, done: Boolean) {
        guarded { device.setChecklistItem(caseId, taskId, itemId, done) }
        refreshPending()
    }

    /** Adds a checklist item; returns its id. */
    fun addChecklistItem(caseId: String, taskId: String, label: String): String =
        guarded { device.addChecklistItem(caseId, taskId, label) }.also { refreshPending() }

    private fun refreshPending() {
        val pending = runCatching { device.pendingChanges().size }.getOrNull() ?: return
        synchronized(this) { syncStatus = syncStatus.copy(pendingChanges = pending) }
    }

    /**
     * Trusts the office certificate with [fingerprint] too (hex, pairs separated or not), as the
     * worker read it from the office after [SyncOutcome.CertificateChanged]; the next sync drops
     * the certificates the office no longer shows.
     */
    fun repin(fingerprint: String) = guarded { device.repin(fingerprint) }

    /** This phone's key fingerprint, to show after enrollment: the office confirms the phone by it. */
    fun keyFingerprint(): String = guarded { device.keyFingerprint() }

    /**
     * Syncs now and records the outcome in [syncStatus]. Never throws for network trouble.
     *
     * With [onProgress], a long sync (a first sync of hundreds of cases) is followed as a
     * percentage ([SyncPercent]: bytes-weighted, 0..100, never going back, 100 only when done):
     * [onProgress] is called on a background thread of the library's whenever the percentage
     * changes, also kept in [SyncStatus.progressPercent] while the sync runs. Post it to the UI
     * thread and return; a slow [onProgress] does not slow the sync, and one that throws is
     * called no more.
     */
    fun syncNow(onProgress: ((Int) -> Unit)? = null): SyncOutcome {
        val bar = SyncPercent()
        val tell = onProgress
        // Events the library hands over after this call returned (a listener still busy then)
        // no longer change the status.
        val running = java.util.concurrent.atomic.AtomicBoolean(true)
        val listener = object : SyncProgressListener {
            private var last = -1

            override fun onProgress(progress: SyncProgress) {
                val percent = bar.update(progress)
                if (percent == last) return
                last = percent
                synchronized(this@FieldcaseSession) {
                    if (running.get()) syncStatus = syncStatus.copy(progressPercent = percent)
                }
                tell?.invoke(percent)
            }
        }
        val outcome: SyncOutcome = try {
            SyncOutcome.Synced(
                guarded {
                    if (onProgress == null) device.syncNow() else device.syncNowWithProgress(listener)
                },
            )
        } catch (e: FieldcaseException.RevokedAndWiped) {
            SyncOutcome.Revoked
        } catch (e: FieldcaseException.NoStore) {
            SyncOutcome.Failed("no store on this phone")
        } catch (e: FieldcaseException.Locked) {
            SyncOutcome.Locked
        } catch (e: FieldcaseException.Network) {
            SyncOutcome.Offline(e.detail)
        } catch (e: FieldcaseException.PinMismatch) {
            SyncOutcome.CertificateChanged(e.serverShows)
        } catch (e: FieldcaseException.Refused) {
            when {
                e.code == "device_unconfirmed" ->
                    SyncOutcome.AwaitingConfirmation(runCatching { device.keyFingerprint() }.getOrDefault(""))
                e.retryLater -> SyncOutcome.Offline(e.detail)
                else -> SyncOutcome.Failed("${e.code}: ${e.detail}")
            }
        } catch (e: FieldcaseException) {
            SyncOutcome.Failed(e.message ?: e.javaClass.simpleName)
        }
        val now = clock.nowMillis()
        synchronized(this) {
            running.set(false)
            syncStatus = when (outcome) {
                is SyncOutcome.Synced -> syncStatus.copy(
                    lastSuccessAtMillis = now,
                    lastOutcome = outcome,
                    consecutiveFailures = 0,
                    progressPercent = null,
                )
                else -> syncStatus.copy(
                    lastOutcome = outcome,
                    consecutiveFailures = syncStatus.consecutiveFailures + 1,
                    progressPercent = null,
                )
            }
        }
        if (outcome is SyncOutcome.Synced) refreshPending()
        return outcome
    }

    internal fun scheduled(atMillis: Long?) {
        synchronized(this) { syncStatus = syncStatus.copy(nextAttemptAtMillis = atMillis) }
    }

    companion object {
        /** Enrolls this phone and returns its unlocked session. */
        fun enroll(
            dir: String,
            serverUrl: String,
            fingerprint: String,
            code: String,
            keyStore: KeyStore?,
            passphrase: String?,
            options: DeviceOptions = DeviceOptions(null),
            clock: Clock = SystemClock,
        ): FieldcaseSession = FieldcaseSession(
            FieldcaseDevice.enroll(dir, serverUrl, fingerprint, code, keyStore, passphrase, options),
            keyStore,
            clock,
        )

        /**
         * Enrolls this phone with the invite the office's enrollment QR code holds (address,
         * certificate and code in one checksummed string) and returns its unlocked session.
         * A text that is not a usable invite is [FieldcaseException.InvalidInvite]; nothing is sent.
         */
        fun enrollWithInvite(
            dir: String,
            invite: String,
            keyStore: KeyStore?,
            passphrase: String?,
            options: DeviceOptions = DeviceOptions(null),
            clock: Clock = SystemClock,
        ): FieldcaseSession = FieldcaseSession(
            FieldcaseDevice.enrollWithInvite(dir, invite, keyStore, passphrase, options),
            keyStore,
            clock,
        )

        /** Opens an enrolled phone's session, locked. Throws [FieldcaseException.NoStore] if none. */
        fun open(dir: String, keyStore: KeyStore?, options: DeviceOptions = DeviceOptions(null), clock: Clock = SystemClock) =
            FieldcaseSession(FieldcaseDevice.open(dir, options), keyStore, clock)

        /** The JVM's current UTC offset in minutes (phones pass their own). */
        fun currentOffsetMinutes(): Int =
            java.util.TimeZone.getDefault().getOffset(System.currentTimeMillis()) / 60_000
    }
}

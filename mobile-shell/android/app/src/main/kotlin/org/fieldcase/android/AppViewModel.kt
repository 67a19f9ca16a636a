// The app's one view model: a thin adapter from FieldcaseSession (mobile-shell/shared, tested on
// the JVM) to Compose state. Every decision (what a failure means, backoff, the revoked switch)
// is made in the session; this file only moves calls off the main thread and publishes results.
package org.fieldcase.android

import android.app.Application
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.lifecycle.AndroidViewModel
import java.util.concurrent.Executors
import org.fieldcase.ffi.FieldcaseException
import org.fieldcase.ffi.TaskSummary
import org.fieldcase.ffi.TaskUpdate
import org.fieldcase.ffi.TimelineEntry
import org.fieldcase.ffi.Task
import org.fieldcase.shell.FieldcaseSession
import org.fieldcase.shell.ScheduledSync
import org.fieldcase.shell.SessionState
import org.fieldcase.shell.SyncStatus

/** Which screen is shown. */
sealed interface Screen {
    data object Enroll : Screen
    data object Unlock : Screen
    data object Today : Screen
    data class Timeline(val caseId: String) : Screen
    data class NoteEditor(val caseId: String, val noteId: String?, val taskId: String?) : Screen
    data class Checklist(val caseId: String, val taskId: String) : Screen
    data object SyncStatusScreen : Screen
    data object Revoked : Screen
}

class AppViewModel(app: Application) : AndroidViewModel(app) {
    private val dir = app.filesDir.resolve("store").path
    private val keyStore = AndroidKeystoreKeyStore(app)
    private val worker = Executors.newSingleThreadExecutor()
    private var session: FieldcaseSession? = null
    private var sync: ScheduledSync? = null
    private val connectivity = app.getSystemService(android.net.ConnectivityManager::class.java)
    private val network = object : android.net.ConnectivityManager.NetworkCallback() {
        override fun onAvailable(n: android.net.Network) {
            background { sync?.networkChanged(true) }
        }

        override fun onLost(n: android.net.Network) {
            background { sync?.networkChanged(false) }
        }
    }

    var screen by mutableStateOf<Screen>(Screen.Unlock)
        private set
    var error by mutableStateOf<String?>(null)
        private set
    var today by mutableStateOf<List<TaskSummary>>(emptyList())
        private set
    var timeline by mutableStateOf<List<TimelineEntry>>(emptyList())
        private set
    var task by mutableStateOf<Task?>(null)
        private set
    var syncStatus by mutableStateOf(SyncStatus())
        private set
    /** The keystore wants the worker to authenticate: the activity shows the screen-lock prompt. */
    var needsAuthentication by mutableStateOf(false)
        private set
    private var pendingPassphrase: String? = null

    init {
        background {
            session = try {
                FieldcaseSession.open(dir, keyStore)
            } catch (e: FieldcaseException.NoStore) {
                null
            }
            post { screen = if (session == null) Screen.Enroll else Screen.Unlock }
            session?.let(::attach)
        }
    }

    private fun attach(s: FieldcaseSession) {
        s.onStateChange { state ->
            post {
                when (state) {
                    SessionState.Revoked, SessionState.Wiped -> screen = Screen.Revoked
                    SessionState.Locked, SessionState.LeaseExpired -> screen = Screen.Unlock
                    SessionState.Unlocked -> {}
                }
            }
        }
        // WorkManager runs the syncs when the shared trigger says, with a network; the key
        // needs the worker, so nothing is scheduled while the store is locked.
        val scheduled = ScheduledSync(s, WorkManagerScheduler(getApplication()), keyNeedsUser = true)
        sync = scheduled
        SyncHolder.sync = scheduled
        runCatching { connectivity?.registerDefaultNetworkCallback(network) }
        if (s.state == SessionState.Unlocked) scheduled.unlocked() else scheduled.locked()
    }

    private fun background(work: () -> Unit) = worker.execute {
        try {
            work()
        } catch (e: FieldcaseException) {
            post { error = e.message }
        }
    }

    private fun post(update: () -> Unit) =
        android.os.Handler(android.os.Looper.getMainLooper()).post(update)

    fun enroll(url: String, fingerprint: String, code: String, passphrase: String) = background {
        val s = FieldcaseSession.enroll(dir, url, fingerprint, code, keyStore, passphrase)
        session = s
        attach(s)
        s.syncNow()
        showToday()
    }

    /** Enrolls with the text of the office's enrollment QR code (scanned, nothing typed). */
    fun enrollWithInvite(invite: String, passphrase: String) = background {
        val s = FieldcaseSession.enrollWithInvite(dir, invite, keyStore, passphrase)
        session = s
        attach(s)
        s.syncNow()
        showToday()
    }

    fun unlock(passphrase: String?) = background {
        val s = session ?: return@background
        try {
            s.unlock(passphrase?.takeIf { it.isNotEmpty() })
        } catch (e: FieldcaseException.AuthenticationRequired) {
            pendingPassphrase = passphrase
            post { needsAuthentication = true }
            return@background
        }
        sync?.unlocked()
        showToday()
    }

    /** The screen-lock prompt came back: unlock again with what was typed, if it succeeded. */
    fun authenticated(ok: Boolean) {
        needsAuthentication = false
        val passphrase = pendingPassphrase
        pendingPassphrase = null
        if (ok) unlock(passphrase)
    }

    fun showToday() = background {
        val tasks = session?.todayTasks() ?: return@background
        post { today = tasks; screen = Screen.Today; error = null }
    }

    fun openCase(caseId: String) = background {
        val entries = session?.timeline(caseId) ?: return@background
        post { timeline = entries; screen = Screen.Timeline(caseId) }
    }

    fun openChecklist(caseId: String, taskId: String) = background {
        val t = session?.case(caseId)?.tasks?.firstOrNull { it.id == taskId } ?: return@background
        post { task = t; screen = Screen.Checklist(caseId, taskId) }
    }

    fun editNote(caseId: String, noteId: String?, taskId: String?) {
        screen = Screen.NoteEditor(caseId, noteId, taskId)
    }

    fun saveNote(caseId: String, noteId: String?, taskId: String?, body: String) = background {
        val s = session ?: return@background
        if (noteId == null) s.writeNote(caseId, body, taskId = taskId) else s.editNote(caseId, noteId, body)
        sync?.localChange()
        openCase(caseId)
    }

    fun tick(caseId: String, taskId: String, itemId: String, done: Boolean) = background {
        session?.setChecklistItem(caseId, taskId, itemId, done)
        openChecklist(caseId, taskId)
    }

    fun updateTask(caseId: String, taskId: String, update: TaskUpdate) = background {
        session?.updateTask(caseId, taskId, update)
        openChecklist(caseId, taskId)
    }

    fun showSyncStatus() {
        syncStatus = session?.syncStatus ?: SyncStatus()
        screen = Screen.SyncStatusScreen
        background {
            val needs = session?.unlockNeeds() ?: return@background
            post { hasPassphrase = needs.passphrase }
        }
    }

    /** Whether the store opens with a passphrase (the security section offers one if not). */
    var hasPassphrase by mutableStateOf(true)
        private set

    /** Adds a passphrase to a phone enrolled without one. */
    fun addPassphrase(passphrase: String) = background {
        val s = session ?: return@background
        s.addPassphrase(passphrase)
        post { hasPassphrase = true; error = null }
    }

    /** Sets the duress PIN. */
    fun setDuressPin(pin: String) = background {
        session?.setDuressPin(pin)
        post { error = null }
    }

    fun syncNow() = background {
        val s = session ?: return@background
        s.syncNow()
        post { syncStatus = s.syncStatus }
    }

    fun panicWipe() = background {
        session?.wipe()
        sync?.wiped()
    }

    fun lock() = background {
        session?.lock()
        sync?.locked()
    }

    override fun onCleared() {
        runCatching { connectivity?.unregisterNetworkCallback(network) }
        SyncHolder.sync = null
        worker.shutdown()
    }
}

// Sync scheduled by Android: the shared ScheduledSync (mobile-shell/shared, tested on the JVM)
// decides when; WorkManager runs it then, and only with a network. One unique work request at
// a time, replaced whenever the plan changes.
package org.fieldcase.android

import android.content.Context
import androidx.work.Constraints
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.Worker
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import org.fieldcase.shell.ScheduledSync
import org.fieldcase.shell.SyncPlan
import org.fieldcase.shell.SyncScheduler

/** The running app's scheduled sync, which the worker runs (none: the app's store is not open). */
object SyncHolder {
    @Volatile
    var sync: ScheduledSync? = null
}

/** What WorkManager runs: the due sync, which schedules the next itself. */
class SyncWorker(context: Context, params: WorkerParameters) : Worker(context, params) {
    override fun doWork(): Result {
        // A process the OS started with no open session has a locked store (the key needs the
        // worker): there is nothing to sync until she opens the app, which schedules again.
        val sync = SyncHolder.sync ?: return Result.success()
        WorkManagerScheduler.inWorker.set(true)
        try {
            sync.runDue()
        } finally {
            WorkManagerScheduler.inWorker.set(false)
        }
        return Result.success()
    }
}

/** Hands each plan to WorkManager. */
class WorkManagerScheduler(context: Context) : SyncScheduler {
    private val work = WorkManager.getInstance(context)

    override fun schedule(plan: SyncPlan) {
        when (plan) {
            SyncPlan.RunNow -> enqueue(0)
            is SyncPlan.RunLater -> enqueue(plan.delayMillis)
            SyncPlan.WaitForUnlock, SyncPlan.WaitForWorker, SyncPlan.Stop -> work.cancelUniqueWork(NAME)
        }
    }

    private fun enqueue(delayMillis: Long) {
        val request = OneTimeWorkRequestBuilder<SyncWorker>()
            .setInitialDelay(delayMillis, TimeUnit.MILLISECONDS)
            .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
            .build()
        // From inside the running worker, the next run follows it (replacing would cancel the
        // run that is scheduling it); from an event, the new plan replaces the old one.
        val policy = if (inWorker.get()) ExistingWorkPolicy.APPEND_OR_REPLACE else ExistingWorkPolicy.REPLACE
        work.enqueueUniqueWork(NAME, policy, request)
    }

    companion object {
        const val NAME = "fieldcase-sync"
        val inWorker: ThreadLocal<Boolean> = ThreadLocal.withInitial { false }
    }
}

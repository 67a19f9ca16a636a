// A sync's progress as the percentage a progress bar shows: pure logic over the bindings'
// SyncProgress events, tested on the JVM.
package org.fieldcase.shell

import org.fieldcase.ffi.SyncProgress

/**
 * The percentage of one sync a progress bar shows, from its [SyncProgress] events: 0..100,
 * never going back within the sync, and 100 only once the sync is finished (until then at most
 * 99, however close the figures come). Make one per sync.
 *
 * Bytes-weighted, not cases-weighted: the bar is for a first sync on a slow link, where the
 * time a sync takes is the time its bytes take, so equal steps of the bar are equal stretches
 * of waiting. Counting cases would make a case of one task and a case of two hundred notes the
 * same step, and the bar would crawl through the large cases and jump through the small ones.
 * The bytes expected are an estimate (the office's stored size of what it has left); core only
 * ever raises it, and counts estimated bytes that were never needed as done, so the bar never
 * goes back; when the estimate was too high, the bar jumps at the end. Before anything is
 * expected (an office built before it said what is left, the first moment of a sync) the bar
 * shows 0.
 */
class SyncPercent {
    private var shown = 0

    /** The percentage shown now. */
    val percent: Int
        @Synchronized get() = shown

    /** Takes one event; returns the percentage to show after it. */
    @Synchronized
    fun update(progress: SyncProgress): Int {
        val next = when {
            progress.finished -> 100
            progress.bytesExpected == 0uL -> 0
            else -> (progress.bytesDone.toDouble() * 100.0 / progress.bytesExpected.toDouble())
                .toInt()
                .coerceIn(0, 99)
        }
        shown = maxOf(shown, next)
        return shown
    }
}

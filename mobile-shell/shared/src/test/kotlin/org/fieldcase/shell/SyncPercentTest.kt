// JVM tests of the sync progress bar (SyncPercent): the rules on their own, then a session's
// first sync of hundreds of cases against its own real test server, followed through the
// bindings' SyncProgressListener. Run from SessionTest.kt's main.
package org.fieldcase.shell

import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.fieldcase.ffi.SyncProgress

private fun event(casesDone: Int, casesExpected: Int, bytesDone: Long, bytesExpected: Long, finished: Boolean = false) =
    SyncProgress(
        casesDone.toULong(), casesExpected.toULong(), bytesDone.toULong(), bytesExpected.toULong(), finished,
    )

class SyncPercentTests {
    fun bytesWeightedNeverBackAndHundredOnlyWhenFinished() {
        val bar = SyncPercent()
        // Nothing expected yet: 0, not a division by zero.
        assertEquals(0, bar.update(event(0, 0, 0, 0)))
        // A tenth of the cases but half of the bytes: the bar follows the bytes.
        assertEquals(50, bar.update(event(1, 10, 500, 1_000)))
        // All but the last byte: not yet 100.
        assertEquals(99, bar.update(event(9, 10, 999, 1_000)))
        // Done equals expected before the sync says it is finished: still not 100.
        assertEquals(99, bar.update(event(10, 10, 1_000, 1_000)))
        // The office says more is left: the bar does not go back.
        assertEquals(99, bar.update(event(10, 40, 1_000, 5_000)))
        assertEquals(99, bar.percent)
        assertEquals(100, bar.update(event(40, 40, 5_000, 5_000, finished = true)))
        // A new bar for the next sync starts at 0.
        assertEquals(0, SyncPercent().percent)
        // Figures past what a Long holds are still a percentage.
        val huge = ULong.MAX_VALUE
        assertEquals(50, SyncPercent().update(SyncProgress(0uL, 1uL, huge / 2uL, huge, false)))
    }

    /** Its own office, so that the other tests' phones do not sync these cases. */
    fun aFirstSyncOfHundredsOfCasesFillsTheBarInOrder() {
        val office = TestServer()
        try {
            assertEquals("400", office.command("cases 400").getValue("cases"))
            val s = FieldcaseSession.enroll(
                Files.createTempDirectory("fieldcase-kt-").toString(), office.info.getValue("url"),
                office.info.getValue("fingerprint"), office.code(), MemoryKeyStore(), null, FAST,
            )
            office.confirm(s)
            val percents = java.util.Collections.synchronizedList(mutableListOf<Int>())
            val threads = java.util.Collections.synchronizedSet(mutableSetOf<Long>())
            val outcome = s.syncNow { percent ->
                percents.add(percent)
                threads.add(Thread.currentThread().id)
            }
            val synced = outcome as? SyncOutcome.Synced ?: error("not synced: $outcome")
            assertTrue(synced.report.frames >= 3u, "not a paged sync: ${synced.report}")
            val seen = percents.toList()
            assertTrue(seen.size >= 2, "$seen")
            assertEquals(seen.sorted(), seen, "the bar went back: $seen")
            assertEquals(seen.distinct(), seen, "told a percentage it already showed: $seen")
            assertEquals(100, seen.last())
            assertTrue(seen.dropLast(1).all { it in 0..99 }, "$seen")
            assertTrue(Thread.currentThread().id !in threads, "called on the caller's thread")
            assertNull(s.syncStatus.progressPercent)
            assertEquals(401, s.cases().size)
            // A listener that throws: called no more, and the sync goes on.
            val calls = java.util.concurrent.atomic.AtomicInteger()
            val again = s.syncNow {
                calls.incrementAndGet()
                throw IllegalStateException("the app's bar failed")
            }
            assertTrue(again is SyncOutcome.Synced, "$again")
            assertEquals(1, calls.get())
        } finally {
            office.stop()
        }
    }
}

"""The phone journey through uniffi's Python bindings, against a real server over real TLS.

Drives the real cdylib (the generated `fieldcase_ffi` module with `libfieldcase_ffi` beside it)
and the `test_server` example of the bindings crate (a real fieldcase-server on 127.0.0.1:0
behind a proxy that can be switched off). Run by `scripts/python-test`, which builds both and sets
FIELDCASE_BINDINGS (the generated Python folder) and FIELDCASE_TEST_SERVER (the server binary).

Standard library only (unittest), so nothing needs installing.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ.get("FIELDCASE_BINDINGS", "."))

import fieldcase_ffi as fc  # noqa: E402

FAST = fc.DeviceOptions(scrypt_work_factor=10)
UTC = 0


class TestServer:
    """The `test_server` example as a subprocess: one JSON line per command."""

    def __init__(self):
        binary = os.environ["FIELDCASE_TEST_SERVER"]
        self.proc = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.info = json.loads(self.proc.stdout.readline())

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def code(self):
        return self.command("code")["code"]

    def confirm(self, device):
        """Confirms a newly enrolled phone by the key fingerprint it shows, as an admin does."""
        me = device.identity()
        reply = self.command(f"confirm {me.device_id} {device.key_fingerprint()}")
        assert reply.get("ok"), reply

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=20)


class MemoryKeyStore(fc.KeyStore):
    """The platform keystore, played by Python: a foreign implementation of the Rust trait."""

    def __init__(self, key=None):
        self.key = key if key is not None else secrets.token_bytes(32)
        self.destroyed = False
        self.calls = 0
        self.destroy_calls = 0

    def root_key(self):
        self.calls += 1
        if self.destroyed:
            raise fc.KeyStoreError.Unavailable(detail="destroyed")
        return self.key

    def destroy_key(self):
        self.destroy_calls += 1
        self.destroyed = True


class FailingKeyStore(fc.KeyStore):
    def root_key(self):
        raise fc.KeyStoreError.Unavailable(detail="user authentication required")

    def destroy_key(self):
        pass


class NeedsUserKeyStore(fc.KeyStore):
    """A keystore whose key needs the user to authenticate first (as Android's does)."""

    def root_key(self):
        raise fc.KeyStoreError.AuthenticationRequired()

    def destroy_key(self):
        pass


class Phone:
    """An enrolled device with its folder and keystore."""

    def __init__(self, server, passphrase="correct horse battery staple"):
        self.dir = tempfile.mkdtemp(prefix="fieldcase-py-")
        self.keys = MemoryKeyStore()
        self.passphrase = passphrase
        self.device = fc.FieldcaseDevice.enroll(
            self.dir,
            server.info["url"],
            server.info["fingerprint"],
            server.code(),
            self.keys,
            passphrase,
            FAST,
        )
        server.confirm(self.device)


class BindingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()
        cls.case_id = cls.server.info["case_id"]
        cls.task_id = cls.server.info["task_id"]

    @classmethod
    def tearDownClass(cls):
        cls.server.command("online")
        cls.server.stop()

    def setUp(self):
        self.server.command("online")

    def phone(self):
        p = Phone(self.server)
        p.device.sync_now()
        return p

    # --- the journey -----------------------------------------------------------------------

    def test_enroll_unlock_lists_and_timeline(self):
        p = Phone(self.server)
        self.assertTrue(p.device.is_unlocked())
        report = p.device.sync_now()
        self.assertIsInstance(report, fc.SyncReport)
        self.assertGreaterEqual(report.cases_updated, 1)

        # Reopen from disk: locked until the keystore key and the passphrase open it together.
        del p.device
        device = fc.FieldcaseDevice.open(p.dir, FAST)
        self.assertFalse(device.is_unlocked())
        with self.assertRaises(fc.FieldcaseError.Locked):
            device.list_cases()
        self.assertEqual(device.unlock_needs(), fc.UnlockNeeds(keystore=True, passphrase=True))
        with self.assertRaises(fc.FieldcaseError.UnlockNeeds):
            device.unlock_with_keystore(p.keys)
        with self.assertRaises(fc.FieldcaseError.UnlockNeeds):
            device.unlock_with_passphrase(p.passphrase)
        self.assertFalse(device.is_unlocked())
        device.unlock(p.keys, p.passphrase)
        self.assertTrue(device.is_unlocked())
        device.lock()
        device.unlock(p.keys, p.passphrase)

        cases = device.list_cases()
        self.assertIn(self.case_id, [c.id for c in cases])
        today = device.today_tasks(UTC)
        mine = [t for t in today if t.task_id == self.task_id]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0].office_kind, fc.OfficeKind.REGISTRY_OFFICE)
        self.assertEqual(mine[0].checklist_total, 2)
        self.assertEqual(mine[0].status, fc.TaskStatus.PLANNED)
        day = mine[0].scheduled_at[:10]
        self.assertIn(self.task_id, [t.task_id for t in device.tasks_on(day, UTC)])

        timeline = device.timeline(self.case_id)
        tasks = [e.task for e in timeline if e.is_task()]
        self.assertIn(self.task_id, [t.id for t in tasks])
        case = device.case(self.case_id)
        self.assertEqual(case.client_code, "K-0142")
        self.assertEqual(case.consent, fc.ConsentStatus.GIVEN)

    def test_notes_tasks_checklist_and_sync_reach_another_phone(self):
        created = self.server.command("case K-0200")
        case_id, task_id = created["case_id"], created["task_id"]
        a, b = self.phone(), self.phone()
        d = a.device

        note_id = d.write_note(
            case_id,
            fc.NewNote(
                kind=fc.NoteKind.VISIT,
                body="Accompanied the client to the registry office.",
                tags=[fc.AssistanceTag.ADMINISTRATIVE],
                task_id=task_id,
            ),
        )
        d.edit_note(case_id, note_id, "Accompanied the client; the form was accepted.")
        d.update_task(
            case_id,
            task_id,
            fc.TaskUpdate(status=fc.TaskStatus.DONE, outcome="Application filed"),
        )
        task = d.case(case_id).tasks[0]
        d.set_checklist_item(case_id, task_id, task.checklist[0].id, True)
        extra = d.add_checklist_item(case_id, task_id, "two photos")
        self.assertGreater(len(d.pending_changes()), 0)

        report = d.sync_now()
        self.assertEqual(report.cases_uploaded, 1)
        self.assertEqual(d.pending_changes(), [])

        b.device.sync_now()
        case = b.device.case(case_id)
        self.assertEqual(len(case.notes), 1)
        self.assertEqual(case.notes[0].body, "Accompanied the client; the form was accepted.")
        self.assertIsNotNone(case.notes[0].edited_at)
        self.assertEqual(case.notes[0].tags, [fc.AssistanceTag.ADMINISTRATIVE])
        self.assertEqual(case.tasks[0].status, fc.TaskStatus.DONE)
        self.assertEqual(case.tasks[0].outcome, "Application filed")
        checklist = {i.id: i for i in case.tasks[0].checklist}
        self.assertTrue(checklist[task.checklist[0].id].done)
        self.assertEqual(checklist[extra].label, "two photos")
        entries = b.device.timeline(case_id)
        self.assertTrue(any(e.is_note() and e.note.id == note_id for e in entries))

    def test_offline_edits_on_two_phones_merge(self):
        created = self.server.command("case K-0300")
        case_id, task_id = created["case_id"], created["task_id"]
        a, b = self.phone(), self.phone()

        self.server.command("offline")
        with self.assertRaises(fc.FieldcaseError.Network):
            a.device.sync_now()
        a.device.write_note(case_id, fc.NewNote(kind=fc.NoteKind.CALL, body="Called the client."))
        a.device.update_task(case_id, task_id, fc.TaskUpdate(outcome="postponed by the office"))
        b.device.write_note(case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="Met at the centre."))
        b.device.update_task(case_id, task_id, fc.TaskUpdate(outcome="client did not come"))
        a.device.update_case(case_id, fc.CaseUpdate(risk_level=fc.RiskLevel.HIGH))
        b.device.update_case(case_id, fc.CaseUpdate(risk_level=fc.RiskLevel.LOW,
                                                    legal_status=fc.LegalStatus.IDENTIFIED_VICTIM))
        with self.assertRaises(fc.FieldcaseError.Network):
            b.device.sync_now()

        self.server.command("online")
        a.device.sync_now()
        b.device.sync_now()
        a.device.sync_now()
        for p in (a, b):
            notes = sorted(n.body for n in p.device.case(case_id).notes)
            self.assertEqual(notes, ["Called the client.", "Met at the centre."])
        self.assertEqual(a.device.case(case_id), b.device.case(case_id))
        conflicts = a.device.conflicts(case_id)
        outcome = [c for c in conflicts if c.field == "outcome" and c.task_id == task_id]
        self.assertEqual(len(outcome), 1)
        values = sorted(v.value for v in outcome[0].values)
        self.assertEqual(values, ["client did not come", "postponed by the office"])
        self.assertIn(outcome[0].winner.value, values)
        self.assertTrue(all(v.author is not None for v in outcome[0].values))
        self.assertTrue(all(v.at is not None for v in outcome[0].values))
        self.assertTrue(outcome[0].sensitive)
        # Risk level is sensitive too; legal status was set on one phone only: no conflict.
        risk = [c for c in conflicts if c.field == "risk_level"]
        self.assertEqual(len(risk), 1)
        self.assertTrue(risk[0].sensitive)
        self.assertEqual(sorted(v.value for v in risk[0].values), ["high", "low"])
        self.assertFalse(any(c.field == "legal_status" for c in conflicts))
        self.assertEqual(a.device.case(case_id).legal_status, fc.LegalStatus.IDENTIFIED_VICTIM)

    def test_the_recovery_plan_and_profile_merge_and_a_goal_status_conflict_is_reported(self):
        created = self.server.command("case K-0400")
        case_id = created["case_id"]
        a, b = self.phone(), self.phone()
        a.device.sync_now()
        ID, WORK = (a.device.add_goal(case_id, fc.NewGoal(
            area=area, description=text, target_date="2027-03-01"))
            for area, text in ((fc.AssistanceTag.ADMINISTRATIVE, "ID card"),
                               (fc.AssistanceTag.JOB_SEARCH, "A job")))
        a.device.sync_now()
        b.device.sync_now()
        self.assertEqual([g.description for g in b.device.case(case_id).plan.goals],
                         ["ID card", "A job"])

        self.server.command("offline")
        note = a.device.write_note(case_id, fc.NewNote(
            kind=fc.NoteKind.VISIT, body="Went to the registry office together."))
        a.device.add_service(case_id, fc.NewService(
            area=fc.AssistanceTag.ADMINISTRATIVE, description="Accompanied to the registry",
            given_on="2026-11-24", goal_ids=[ID], note_ids=[note]))
        a.device.update_goal(case_id, ID, fc.GoalUpdate(status=fc.GoalStatus.ACHIEVED))
        b.device.update_goal(case_id, ID, fc.GoalUpdate(status=fc.GoalStatus.IN_PROGRESS))
        a.device.set_profile(case_id, fc.ClientProfile(
            gender=fc.Gender.FEMALE, birth_year=1999, nationality="rs",
            exploitation=[fc.ExploitationType.LABOUR],
            labour_industry=fc.LabourIndustry.AGRICULTURE,
            means_of_control=[fc.MeansOfControl.DEBT_BONDAGE]))
        b.device.add_review(case_id, fc.NewReview(reviewed_on="2026-11-25", summary="On track."))
        self.server.command("online")
        for p in (a, b, a):
            p.device.sync_now()

        case = a.device.case(case_id)
        self.assertEqual(case, b.device.case(case_id))
        self.assertEqual(case.plan.services[0].goal_ids, [ID])
        self.assertEqual(case.plan.services[0].note_ids, [note])
        self.assertEqual(case.plan.reviews[0].summary, "On track.")
        self.assertEqual(case.profile.nationality, "RS")
        self.assertEqual(case.profile.birth_year, 1999)
        self.assertEqual(case.profile.labour_industry, fc.LabourIndustry.AGRICULTURE)
        self.assertEqual(a.device.plan(case_id), case.plan)
        status = [c for c in a.device.conflicts(case_id) if c.goal_id == ID]
        self.assertEqual(len(status), 1)
        self.assertEqual(status[0].field, "status")
        self.assertTrue(status[0].sensitive)
        self.assertEqual(sorted(v.value for v in status[0].values), ["achieved", "in_progress"])
        actions = [h.action for h in a.device.history(case_id)]
        for action in ("goal.add", "goal.update", "service.add", "review.add", "profile.update"):
            self.assertIn(action, actions)
        achieved = [h for h in a.device.history(case_id) if h.status == fc.GoalStatus.ACHIEVED]
        self.assertEqual(achieved[0].goal_id, ID)

        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            a.device.set_profile(case_id, fc.ClientProfile(nationality="XX"))
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            a.device.set_profile(case_id, fc.ClientProfile(birth_year=1850))
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            a.device.add_goal(case_id, fc.NewGoal(area=fc.AssistanceTag.LEGAL, description=" "))
        with self.assertRaises(fc.FieldcaseError.NotFound):
            a.device.update_goal(case_id, case_id, fc.GoalUpdate(status=fc.GoalStatus.DROPPED))
        self.assertEqual(a.device.case(case_id).profile.nationality, "RS", "nothing changed")

    def test_a_new_phone_syncs_once_an_admin_confirms_its_key_fingerprint(self):
        d = fc.FieldcaseDevice.enroll(
            tempfile.mkdtemp(prefix="fieldcase-py-"), self.server.info["url"],
            self.server.info["fingerprint"], self.server.code(), MemoryKeyStore(), None, FAST,
        )
        shown = d.key_fingerprint()
        self.assertRegex(shown, r"^[0-9A-F]{4}(-[0-9A-F]{4}){3}$")
        with self.assertRaises(fc.FieldcaseError.Refused) as e:
            d.sync_now()
        self.assertEqual(e.exception.code, "device_unconfirmed")
        self.assertTrue(e.exception.retry_later)
        # No lease yet, so nothing opens before the office has confirmed it.
        with self.assertRaises(fc.FieldcaseError.LeaseExpired):
            d.list_cases()
        self.server.confirm(d)
        d.sync_now()
        self.assertIn(self.case_id, [c.id for c in d.list_cases()])

    def test_a_revoked_phone_wipes_itself_on_its_next_sync(self):
        p = self.phone()
        other = self.phone()
        p.device.write_note(self.case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="not yet synced"))
        me = p.device.identity()
        self.assertEqual(me.user_id, self.server.info["user_id"])
        self.server.command(f"revoke {me.device_id}")

        with self.assertRaises(fc.FieldcaseError.RevokedAndWiped):
            p.device.sync_now()
        self.assertFalse(os.path.exists(os.path.join(p.dir, "fieldcase.keys")))
        self.assertFalse(os.path.exists(os.path.join(p.dir, "fieldcase.db")))
        with self.assertRaises(fc.FieldcaseError.NoStore):
            p.device.list_cases()
        with self.assertRaises(fc.FieldcaseError.NoStore):
            fc.FieldcaseDevice.open(p.dir, FAST)
        # The other phone of the same worker is not affected.
        other.device.sync_now()
        self.assertIn(self.case_id, [c.id for c in other.device.list_cases()])

    def assert_folder_tells_nothing(self, folder, device_id):
        """No file left in a wiped phone's folder names the office, its certificate or the
        device, or says that the phone was wiped."""
        info = self.server.info
        needles = [
            info["url"].removeprefix("https://").encode(),
            info["direct_url"].removeprefix("https://").encode(),
            b"127.0.0.1",
            info["fingerprint"].encode(),
            bytes.fromhex(info["fingerprint"]),
            device_id.encode(),
            bytes.fromhex(device_id.replace("-", "")),
            b"https",
            b"panic",
            b"duress",
            b"wipe",
            b"revoked",
            b"receipt",
        ]
        names = os.listdir(folder)
        self.assertTrue(names, "the sealed statement for the office is kept")
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read().lower()
            for needle in needles:
                self.assertNotIn(needle.lower(), data, name)
                self.assertNotIn(needle.lower(), name.encode().lower(), name)

    def test_panic_wipe_works_offline_leaves_nothing_readable_and_reports_later(self):
        p = self.phone()
        me = p.device.identity()
        self.server.command("offline")
        # The app passes no keystore: core destroys the one the device was enrolled with.
        report = p.device.panic_wipe(None)
        self.assertTrue(report.keystore_key_destroyed)
        self.assertEqual(p.keys.destroy_calls, 1)
        with self.assertRaises(fc.FieldcaseError.NoStore):
            p.device.list_cases()
        self.assert_folder_tells_nothing(p.dir, me.device_id)
        with self.assertRaises(fc.FieldcaseError.Network):
            p.device.send_wipe_receipt()
        self.server.command("online")
        # The device still in memory knows where its office is (the folder does not).
        self.assertTrue(p.device.send_wipe_receipt())
        self.assertFalse(p.device.send_wipe_receipt())
        self.assertEqual(os.listdir(p.dir), [])
        row = self.server.command(f"device {me.device_id}")
        self.assertEqual((row["status"], row["wipe_reason"]), ("revoked", "panic"))

    def test_a_revoked_phone_destroys_its_keystore_key_whatever_the_app_does(self):
        p = self.phone()
        me = p.device.identity()
        self.server.command(f"revoke {me.device_id}")
        with self.assertRaises(fc.FieldcaseError.RevokedAndWiped):
            p.device.sync_now()
        self.assertEqual(p.keys.destroy_calls, 1)
        self.assertEqual(self.server.command(f"device {me.device_id}")["wipe_reason"], "revoked")

    def test_a_duress_workspace_wiped_before_it_synced_still_tells_the_office(self):
        p = self.phone()
        me = p.device.identity()
        duress = "tram 9 stops at the old mill"
        p.device.set_duress_pin(p.keys, duress)
        p.device.lock()
        del p.device
        d = fc.FieldcaseDevice.open(p.dir, FAST)
        d.unlock(p.keys, duress)
        # Offline, the workspace is wiped, then the app is closed: no address is left anywhere.
        self.server.command("offline")
        d.panic_wipe(p.keys)
        del d
        self.assert_folder_tells_nothing(p.dir, me.device_id)
        self.server.command("online")
        info = self.server.info
        self.assertTrue(
            fc.send_pending_wipe_receipt(p.dir, info["direct_url"], info["fingerprint"])
        )
        alerts = self.server.command("alerts")["alerts"]
        self.assertIn("duress", [a["kind"] for a in alerts if a["device_id"] == me.device_id])
        self.assertEqual(self.server.command(f"device {me.device_id}")["status"], "revoked")

    def test_a_clock_set_back_past_the_lease_opens_nothing(self):
        p = self.phone()
        self.assertIn(self.case_id, [c.id for c in p.device.list_cases()])
        p.device.lock()
        del p.device
        hours = 3600

        def opened(offset):
            d = fc.FieldcaseDevice.open(
                p.dir, fc.DeviceOptions(scrypt_work_factor=10, clock_offset_seconds=offset)
            )
            d.unlock(p.keys, p.passphrase)
            return d

        # Three days and an hour later, offline: the 72 h lease has run out.
        late = opened(73 * hours)
        with self.assertRaises(fc.FieldcaseError.LeaseExpired):
            late.list_cases()
        late.lock()
        del late
        # The clock set back to the real time, and to a day before: still nothing opens.
        for offset in (0, -24 * hours):
            d = opened(offset)
            with self.assertRaises(fc.FieldcaseError.LeaseExpired):
                d.list_cases()
            with self.assertRaises(fc.FieldcaseError.LeaseExpired):
                d.case(self.case_id)
            d.lock()

    def test_wrong_passphrases_in_a_row_make_the_next_attempt_wait(self):
        p = self.phone()
        p.device.lock()
        for _ in range(4):
            with self.assertRaises(fc.FieldcaseError.WrongKey):
                p.device.unlock(p.keys, "not the passphrase at all")
        with self.assertRaises(fc.FieldcaseError.TooManyAttempts) as e:
            p.device.unlock(p.keys, "not the passphrase at all")
        self.assertEqual(e.exception.retry_after_secs, 30)
        # The right one is not even tried while the wait runs, nor after the app restarts.
        with self.assertRaises(fc.FieldcaseError.TooManyAttempts):
            p.device.unlock(p.keys, p.passphrase)
        del p.device
        d = fc.FieldcaseDevice.open(p.dir, FAST)
        with self.assertRaises(fc.FieldcaseError.TooManyAttempts) as e:
            d.unlock(p.keys, p.passphrase)
        self.assertGreater(e.exception.retry_after_secs, 0)
        self.assertFalse(d.is_unlocked())

    def test_a_phone_enrolls_from_the_invite_the_enrollment_page_shows(self):
        shown = self.server.command("invite")
        invite = shown["invite"]
        read = fc.parse_enrollment_invite(invite)
        self.assertEqual(read.server_url, self.server.info["url"])
        self.assertEqual(read.fingerprint, self.server.info["fingerprint"])
        self.assertEqual(read.code, shown["code"])
        # Scanned, nothing typed but the passphrase.
        folder = tempfile.mkdtemp(prefix="fieldcase-py-")
        d = fc.FieldcaseDevice.enroll_with_invite(
            folder, invite, MemoryKeyStore(), "correct horse battery staple", FAST
        )
        self.server.confirm(d)
        d.sync_now()
        self.assertIn(self.case_id, [c.id for c in d.list_cases()])
        # Anything else is a typed refusal, and nothing is sent.
        damaged = invite[:12] + ("B" if invite[12] == "A" else "A") + invite[13:]
        cases = [
            ("https://example.org/", fc.InviteProblem.NOT_AN_INVITE),
            ("FC9:" + invite[4:], fc.InviteProblem.UNSUPPORTED_VERSION),
            (damaged, fc.InviteProblem.DAMAGED),
            (invite[:-10], fc.InviteProblem.DAMAGED),
        ]
        for text, problem in cases:
            with self.assertRaises(fc.FieldcaseError.InvalidInvite) as caught:
                fc.parse_enrollment_invite(text)
            self.assertEqual(caught.exception.problem, problem, text)
            with self.assertRaises(fc.FieldcaseError.InvalidInvite):
                fc.FieldcaseDevice.enroll_with_invite(
                    tempfile.mkdtemp(prefix="fieldcase-py-"), text, MemoryKeyStore(),
                    "correct horse battery staple", FAST,
                )

    def test_a_weak_passphrase_is_refused_before_the_code_is_spent(self):
        code = self.server.code()
        for weak in ("1234", "password2024", "qwertyuiopas"):
            folder = tempfile.mkdtemp(prefix="fieldcase-py-")
            with self.assertRaises(fc.FieldcaseError.WeakPassphrase) as e:
                fc.FieldcaseDevice.enroll(
                    folder, self.server.info["url"], self.server.info["fingerprint"], code,
                    MemoryKeyStore(), weak, FAST,
                )
            self.assertNotIn(weak, e.exception.detail)
            self.assertEqual(os.listdir(folder), [])
        # The code is still good for a strong one.
        d = fc.FieldcaseDevice.enroll(
            tempfile.mkdtemp(prefix="fieldcase-py-"), self.server.info["url"],
            self.server.info["fingerprint"], code, MemoryKeyStore(),
            "tram 9 stops at the old mill", FAST,
        )
        self.assertTrue(d.is_unlocked())

    def test_a_duress_pin_destroys_the_cases_and_the_office_is_alerted(self):
        created = self.server.command("case K-DURESS")
        case_id = created["case_id"]
        p = self.phone()
        marker = "safe-house-" + secrets.token_hex(8)
        p.device.write_note(case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body=f"Moved to {marker}"))
        me = p.device.identity()
        duress = "tram 9 stops at the old mill"

        def folder_bytes():
            out = {}
            for name in os.listdir(p.dir):
                with open(os.path.join(p.dir, name), "rb") as f:
                    out[name] = f.read()
            return out

        case_raw = bytes.fromhex(case_id.replace("-", ""))
        # The case is on the phone now (its id in the clear in the database): the check below
        # can fail.
        self.assertTrue(any(case_raw in b for b in folder_bytes().values()))
        with self.assertRaises(fc.FieldcaseError.WeakPassphrase):
            p.device.set_duress_pin(p.keys, "1234")
        p.device.set_duress_pin(p.keys, duress)
        p.device.lock()
        start = time.perf_counter()
        p.device.unlock(p.keys, p.passphrase)
        real_secs = time.perf_counter() - start
        self.assertIn(case_id, [c.id for c in p.device.list_cases()])
        p.device.lock()
        del p.device

        # Forced to open the phone, she types the duress PIN.
        d = fc.FieldcaseDevice.open(p.dir, FAST)
        start = time.perf_counter()
        d.unlock(p.keys, duress)
        duress_secs = time.perf_counter() - start
        print(
            f"\nFIGURE unlock with the passphrase {real_secs * 1000:.0f} ms, with the duress PIN "
            f"{duress_secs * 1000:.0f} ms (scrypt at the tests' work factor over both slots)",
            file=sys.stderr,
        )
        self.assertEqual(d.list_cases(), [])
        self.assertEqual(d.today_tasks(UTC), [])
        with self.assertRaises(fc.FieldcaseError.NotFound):
            d.case(case_id)
        with self.assertRaises(fc.FieldcaseError.NotFound):
            d.write_note(case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="goes nowhere"))
        self.assertEqual(d.identity(), me)
        # Nothing in the folder holds the case, the note, the PIN, or any mark of duress.
        for name, data in folder_bytes().items():
            for needle in (marker.encode(), case_raw, case_id.encode(), duress.encode()):
                self.assertNotIn(needle, data, name)
            self.assertNotIn(b"duress", data.lower(), name)
        # It keeps looking like a phone with no cases: the PIN opens it again, the old
        # passphrase opens nothing.
        d.lock()
        with self.assertRaises(fc.FieldcaseError.WrongKey):
            d.unlock(p.keys, p.passphrase)
        d.unlock(p.keys, duress)
        self.assertEqual(d.list_cases(), [])

        # At its next contact the office revokes it and the worker's team is alerted.
        with self.assertRaises(fc.FieldcaseError.RevokedAndWiped):
            d.sync_now()
        alerts = self.server.command("alerts")["alerts"]
        mine = [a for a in alerts if a["device_id"] == me.device_id]
        self.assertEqual(len(mine), 1, alerts)
        self.assertEqual(mine[0]["kind"], "duress")
        self.assertEqual(mine[0]["user_id"], me.user_id)
        self.assertEqual(self.server.command(f"device {me.device_id}")["status"], "revoked")

    def test_a_keystore_only_phone_gets_a_passphrase_then_a_duress_pin(self):
        keys = MemoryKeyStore()
        folder = tempfile.mkdtemp(prefix="fieldcase-py-")
        d = fc.FieldcaseDevice.enroll(
            folder, self.server.info["url"], self.server.info["fingerprint"],
            self.server.code(), keys, None, FAST,
        )
        self.server.confirm(d)
        d.sync_now()
        self.assertEqual(d.unlock_needs(), fc.UnlockNeeds(keystore=True, passphrase=False))
        # No duress PIN without a passphrase beside it.
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.set_duress_pin(keys, "tram 9 stops at the old mill")
        with self.assertRaises(fc.FieldcaseError.WeakPassphrase):
            d.add_passphrase(keys, "letmein123")
        with self.assertRaises(fc.FieldcaseError.WrongKey):
            d.add_passphrase(MemoryKeyStore(), "correct horse battery staple")
        self.assertEqual(d.unlock_needs(), fc.UnlockNeeds(keystore=True, passphrase=False))

        d.add_passphrase(keys, "correct horse battery staple")
        self.assertEqual(d.unlock_needs(), fc.UnlockNeeds(keystore=True, passphrase=True))
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.add_passphrase(keys, "another long phrase of words")
        d.lock()
        with self.assertRaises(fc.FieldcaseError.UnlockNeeds):
            d.unlock(keys, None)
        with self.assertRaises(fc.FieldcaseError.WrongKey):
            d.unlock(keys, "correct horse battery stapler")
        d.unlock(keys, "correct horse battery staple")
        self.assertIn(self.case_id, [c.id for c in d.list_cases()])
        # Now the duress PIN can be set, and it works as on a phone enrolled with a passphrase.
        d.set_duress_pin(keys, "tram 9 stops at the old mill")
        d.lock()
        d.unlock(keys, "tram 9 stops at the old mill")
        self.assertEqual(d.list_cases(), [])

    def test_a_lone_surrogate_fails_without_leaking_the_device_and_close_releases_it(self):
        import gc

        p = self.phone()
        wal = os.path.join(p.dir, "fieldcase.db-wal")
        p.device.write_note(self.case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="before"))
        self.assertTrue(os.path.exists(wal))
        for bad in ("\ud800", "a\udfffb"):
            with self.assertRaises(UnicodeEncodeError):
                p.device.case(bad)
            with self.assertRaises(UnicodeEncodeError):
                p.device.write_note(self.case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body=bad))
        # No reference was left behind: dropping the object closes the database (SQLite removes
        # the WAL when its last connection closes).
        del p.device
        gc.collect()
        self.assertFalse(os.path.exists(wal))

        # close() does it at once, whatever holds references; later calls are a typed error.
        d = fc.FieldcaseDevice.open(p.dir, FAST)
        d.unlock(p.keys, p.passphrase)
        d.write_note(self.case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="after"))
        kept = d  # noqa: F841 - a reference the app forgot about
        d.close()
        d.close()
        self.assertFalse(os.path.exists(wal))
        self.assertFalse(d.is_unlocked())
        with self.assertRaises(fc.FieldcaseError.Closed):
            d.list_cases()
        again = fc.FieldcaseDevice.open(p.dir, FAST)
        again.unlock(p.keys, p.passphrase)
        self.assertIn(self.case_id, [c.id for c in again.list_cases()])

    # --- errors at the boundary ---------------------------------------------------------------

    def test_typed_errors(self):
        p = self.phone()
        d = p.device
        with self.assertRaises(fc.FieldcaseError.InvalidInput) as e:
            d.write_note(self.case_id, fc.NewNote(kind=fc.NoteKind.VISIT, body="   "))
        self.assertIn("empty", e.exception.detail)
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.case("not-a-uuid")
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.today_tasks(100_000)
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.update_task(self.case_id, self.task_id, fc.TaskUpdate(follow_up="yesterday"))
        with self.assertRaises(fc.FieldcaseError.NotFound) as e:
            d.case("0190f5a0-0000-7000-8000-000000000000")
        self.assertEqual(e.exception.what, "case")

        d.lock()
        with self.assertRaises(fc.FieldcaseError.WrongKey):
            d.unlock(MemoryKeyStore(), p.passphrase)
        with self.assertRaises(fc.FieldcaseError.WrongKey):
            d.unlock(p.keys, "not the passphrase")
        with self.assertRaises(fc.FieldcaseError.Keystore):
            d.unlock(FailingKeyStore(), p.passphrase)
        with self.assertRaises(fc.FieldcaseError.Keystore):
            d.unlock(MemoryKeyStore(key=b"short"), p.passphrase)
        # A keystore that holds its key only for a user who just authenticated.
        with self.assertRaises(fc.FieldcaseError.AuthenticationRequired):
            d.unlock(NeedsUserKeyStore(), p.passphrase)
        with self.assertRaises(fc.FieldcaseError.Locked):
            d.sync_now()

        info = self.server.info
        wrong_pin = "00" * 32
        with self.assertRaises(fc.FieldcaseError.PinMismatch) as e:
            fc.FieldcaseDevice.enroll(
                tempfile.mkdtemp(), info["url"], wrong_pin, self.server.code(),
                MemoryKeyStore(), None, FAST,
            )
        self.assertEqual(e.exception.server_shows, info["fingerprint"])
        with self.assertRaises(fc.FieldcaseError.Refused) as e:
            fc.FieldcaseDevice.enroll(
                tempfile.mkdtemp(), info["url"], info["fingerprint"], "AAAA-BBBB-CCCC-DDDD",
                MemoryKeyStore(), None, FAST,
            )
        self.assertFalse(e.exception.retry_later)
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            fc.FieldcaseDevice.enroll(
                tempfile.mkdtemp(), info["url"], "not hex", "x", MemoryKeyStore(), None, FAST
            )
        with self.assertRaises(fc.FieldcaseError.AlreadyEnrolled):
            fc.FieldcaseDevice.enroll(
                p.dir, info["url"], info["fingerprint"], self.server.code(),
                MemoryKeyStore(), None, FAST,
            )
        with self.assertRaises(fc.FieldcaseError.NoStore):
            fc.FieldcaseDevice.open(tempfile.mkdtemp(), FAST)

    def test_a_panic_is_a_typed_error_not_a_crash(self):
        p = self.phone()
        for _ in range(3):
            with self.assertRaises(fc.FieldcaseError.Internal) as e:
                fc.check_panic_boundary()
            # raised inside core, caught at the boundary, reported as a typed error
            self.assertIn("panic inside fieldcase-core", e.exception.detail)
            # and the process, the library and an open device go on working
            self.assertIsInstance(p.device.sync_now(), fc.SyncReport)
        self.assertTrue(fc.fieldcase_version())

    def test_wipe_destroys_the_store_and_the_keystore_key(self):
        p = self.phone()
        report = p.device.wipe(p.keys)
        self.assertTrue(report.keystore_key_destroyed)
        self.assertTrue(p.keys.destroyed)
        self.assertIn("fieldcase.keys", report.files_removed)
        with self.assertRaises(fc.FieldcaseError.NoStore):
            p.device.list_cases()
        with self.assertRaises(fc.FieldcaseError.NoStore):
            fc.FieldcaseDevice.open(p.dir, FAST)

    def test_threads_share_one_device(self):
        import threading

        p = self.phone()
        errors = []

        def write(n):
            try:
                for i in range(5):
                    p.device.write_note(
                        self.case_id,
                        fc.NewNote(kind=fc.NoteKind.OBSERVATION, body=f"thread {n} note {i}"),
                    )
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        threads.append(threading.Thread(target=p.device.sync_now))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        p.device.sync_now()
        self.assertEqual(p.device.pending_changes(), [])

    # --- figures ------------------------------------------------------------------------------

    def test_figure_sync_with_nothing_to_do(self):
        # Straight to the server, not through the test's proxy.
        d = fc.FieldcaseDevice.enroll(
            tempfile.mkdtemp(prefix="fieldcase-py-"), self.server.info["direct_url"],
            self.server.info["fingerprint"], self.server.code(), MemoryKeyStore(), None, FAST,
        )
        self.server.confirm(d)
        d.sync_now()
        p = type("P", (), {"device": d})
        times = []
        for _ in range(20):
            start = time.perf_counter()
            report = p.device.sync_now()
            times.append(time.perf_counter() - start)
            self.assertEqual(report.cases_uploaded, 0)
        times.sort()
        print(
            f"\nFIGURE sync_now with nothing to do, from Python: median {times[10] * 1000:.1f} ms,"
            f" min {times[0] * 1000:.1f} ms over 20 (new TLS connection each)",
            file=sys.stderr,
        )

    # --- attachments ------------------------------------------------------------------------

    def test_a_photo_is_kept_without_its_gps_tags_and_reaches_a_colleague_when_asked(self):
        import base64

        case_id = self.server.command("case K-0700")["case_id"]
        a, b = self.phone(), self.phone()
        taken = base64.b64decode(self.server.command("photo 3")["jpeg_base64"])
        for marker in (b"GPSLatitude", b"FieldCam", b"Exif\x00\x00", b"Shelter, Ulica 7"):
            self.assertIn(marker, taken)

        # Refused, nothing kept: a lying media type, a label with path characters.
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            a.device.attach_bytes(case_id, fc.NewAttachment(label="scan", media_type=fc.MediaType.PDF), taken)
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            a.device.attach_bytes(case_id, fc.NewAttachment(label="../x", media_type=fc.MediaType.JPEG), taken)
        self.assertEqual(a.device.attachments(case_id), [])

        # From a file the camera app hands over.
        with tempfile.NamedTemporaryFile(suffix=".jpg", delete=False) as f:
            f.write(taken)
        added = a.device.attach_file(
            case_id, fc.NewAttachment(label="Summons, 12 March", media_type=fc.MediaType.JPEG), f.name
        )
        os.unlink(f.name)
        self.assertTrue(added.state.is_only_here())
        kept = a.device.open_attachment(case_id, added.id)
        self.assertEqual(len(kept), added.size)
        self.assertTrue(kept.startswith(b"\xff\xd8"))
        for marker in (b"GPSLatitude", b"FieldCam", b"Exif\x00\x00", b"Shelter, Ulica 7"):
            self.assertNotIn(marker, kept)

        a.device.sync_now()
        report = a.device.sync_attachments(False, None)
        self.assertEqual(report.uploads_completed, 1)
        self.assertTrue(a.device.attachment(case_id, added.id).state.is_at_office())

        b.device.sync_now()
        theirs = b.device.attachments(case_id)
        self.assertEqual([t.id for t in theirs], [added.id])
        self.assertTrue(theirs[0].state.is_not_downloaded())
        with self.assertRaises(fc.FieldcaseError.NotDownloaded):
            b.device.open_attachment(case_id, added.id)
        b.device.request_download(case_id, added.id)
        fetched = b.device.sync_attachments(False, None)
        self.assertEqual(fetched.downloads_completed, 1)
        self.assertEqual(b.device.open_attachment(case_id, added.id), kept)
        with self.assertRaises(fc.FieldcaseError.NotYours):
            b.device.remove_attachment(case_id, added.id)

        space = a.device.storage_report()
        self.assertGreater(space.used_bytes, len(kept))
        self.assertGreater(space.available_bytes, 0)
        a.device.remove_attachment(case_id, added.id)
        self.assertEqual(a.device.attachments(case_id), [])


class RepinTest(unittest.TestCase):
    """A phone away while the office replaced its certificate: the typed mismatch, then `repin`.

    Its own server, since rotating would strand the other tests' phones."""

    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_a_phone_that_missed_the_rotation_is_repinned_and_syncs(self):
        p = Phone(self.server)
        d = p.device
        d.sync_now()
        old = self.server.info["fingerprint"]
        self.assertEqual(d.pins(), [old])
        new = self.server.command("rotate")["fingerprint"]
        self.assertNotEqual(new, old)
        with self.assertRaises(fc.FieldcaseError.PinMismatch) as e:
            d.sync_now()
        self.assertEqual(e.exception.server_shows, new)
        with self.assertRaises(fc.FieldcaseError.InvalidInput):
            d.repin("not a fingerprint")
        self.assertEqual(d.pins(), [old])
        # As the admin reads it out: upper case, in pairs.
        d.repin(":".join(new[i:i + 2] for i in range(0, len(new), 2)).upper())
        self.assertEqual(d.pins(), [new, old])
        d.sync_now()
        self.assertEqual(d.pins(), [new])
        d.lock()
        with self.assertRaises(fc.FieldcaseError.Locked):
            d.repin(new)


class RecordingListener(fc.SyncProgressListener):
    """The app's progress bar, played by Python: a foreign implementation of the Rust trait."""

    def __init__(self):
        self.events = []
        self.threads = set()

    def on_progress(self, progress):
        self.events.append(progress)
        self.threads.add(threading.get_ident())


class RaisingListener(fc.SyncProgressListener):
    """A listener whose code fails."""

    def __init__(self):
        self.calls = 0

    def on_progress(self, progress):
        self.calls += 1
        raise RuntimeError("the app's progress bar failed")


class ProgressTest(unittest.TestCase):
    """A first sync of hundreds of cases, followed through a foreign `SyncProgressListener`.

    Its own server, so that the other tests' phones do not sync these cases."""

    CASES = 400

    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()
        made = cls.server.command(f"cases {cls.CASES}")
        assert made.get("cases") == str(cls.CASES), made
        # The server's first case, and these.
        cls.total = cls.CASES + 1

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_a_first_sync_reports_progress_that_only_grows_and_ends_at_expected(self):
        p = Phone(self.server)
        listener = RecordingListener()
        report = p.device.sync_now_with_progress(listener)
        self.assertGreaterEqual(report.frames, 3, "not a paged sync")
        events = listener.events
        self.assertGreaterEqual(len(events), 2)
        for a, b in zip(events, events[1:]):
            self.assertGreaterEqual(b.cases_done, a.cases_done)
            self.assertGreaterEqual(b.bytes_done, a.bytes_done)
            self.assertGreaterEqual(b.cases_expected, a.cases_expected)
            self.assertGreaterEqual(b.bytes_expected, a.bytes_expected)
        for e in events:
            self.assertLessEqual(e.cases_done, e.cases_expected)
            self.assertLessEqual(e.bytes_done, e.bytes_expected)
        last = events[-1]
        self.assertTrue(last.finished)
        self.assertFalse(any(e.finished for e in events[:-1]))
        self.assertEqual(last.cases_done, last.cases_expected)
        self.assertEqual(last.bytes_done, last.bytes_expected)
        self.assertEqual(last.cases_done, self.total)
        self.assertGreaterEqual(last.bytes_done, report.bytes_sent + report.bytes_received)
        # Called on the library's thread, not the one that asked for the sync.
        self.assertNotIn(threading.get_ident(), listener.threads)
        self.assertEqual(len(p.device.list_cases()), self.total)
        # Nothing left: the next sync is one round, and its bar goes straight to the end.
        again = RecordingListener()
        self.assertEqual(p.device.sync_now_with_progress(again).round_trips, 1)
        self.assertTrue(again.events[-1].finished)
        self.assertEqual(again.events[-1].cases_done, 0)

    def test_a_listener_that_raises_does_not_break_the_sync(self):
        p = Phone(self.server)
        listener = RaisingListener()
        report = p.device.sync_now_with_progress(listener)
        self.assertGreaterEqual(report.frames, 3)
        # Its first event failed: it was given no more.
        self.assertEqual(listener.calls, 1)
        self.assertEqual(len(p.device.list_cases()), self.total)


if __name__ == "__main__":
    unittest.main(verbosity=2)

//! [`FieldcaseDevice`]: the enrolled phone as one object, a thin newtype over
//! `fieldcase_core::device::Device`. Every method parses its arguments, calls core once through
//! [`crate::error::call`], and converts the result; rules live in core.
//!
//! The API is synchronous: a call blocks until core is done (an edit returns after its commit,
//! `sync_now` after the last round). Apps call it from a background thread. The object is safe to
//! share between threads; core serialises access to the store.

use std::path::PathBuf;
use std::sync::Arc;

use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::{CaseId, ChecklistItemId, GoalId, NoteId, TaskId};
use fieldcase_core::protocol::Fingerprint;
use fieldcase_core::store::{KeySetup, StoreOptions};
use time::UtcOffset;
use zeroize::Zeroize;

use crate::FieldcaseError;
use crate::error::{call, call_ffi};
use crate::keys::{FetchedKey, KeptKeyStore, KeyStore};
use crate::progress::{ForeignListener, SyncProgressListener};
use crate::types::{
    Author, Case, CaseSummary, CaseUpdate, ClientProfile, Conflict, GoalUpdate, HistoryEntry,
    NewGoal, NewNote, NewReview, NewService, PendingChange, Plan, SyncReport, TaskSummary,
    TaskUpdate, TimelineEntry, WipeReport, parse_date, parse_id,
};

/// How a device's store is tuned; the defaults suit a phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct DeviceOptions {
    /// scrypt work factor (log2 N) for a new passphrase slot; `None` keeps core's default.
    /// Tests lower it to stay fast.
    #[uniffi(default = None)]
    pub scrypt_work_factor: Option<u8>,
    /// For tests and demonstrations: the device reads the system clock shifted by this many
    /// seconds, as a phone whose clock was set wrong does. `None` (what an app passes) is the
    /// system clock. The offline lease does not follow a clock set back (see
    /// `core/src/store/lease.rs`).
    #[uniffi(default = None)]
    pub clock_offset_seconds: Option<i64>,
}

impl DeviceOptions {
    fn to_core(&self) -> StoreOptions {
        let mut options = StoreOptions::default();
        if let Some(w) = self.scrypt_work_factor {
            options.scrypt_work_factor = w;
        }
        if let Some(offset) = self.clock_offset_seconds {
            options.clock = std::sync::Arc::new(fieldcase_core::clock::OffsetClock(
                time::Duration::seconds(offset),
            ));
        }
        options
    }
}

/// An enrolled phone: its encrypted store and its credential for the office.
#[derive(Debug, uniffi::Object)]
pub struct FieldcaseDevice {
    pub(crate) inner: Device,
}

fn offset(minutes: i32) -> Result<UtcOffset, FieldcaseError> {
    minutes
        .checked_mul(60)
        .and_then(|s| UtcOffset::from_whole_seconds(s).ok())
        .ok_or_else(|| FieldcaseError::InvalidInput {
            detail: "invalid UTC offset".into(),
        })
}

impl FieldcaseDevice {
    /// Gives core the keystore the app handed over, so that every wipe destroys its key.
    fn keep(&self, keystore: Option<&Arc<dyn KeyStore>>) {
        if let Some(ks) = keystore {
            self.inner
                .keep_keystore(Arc::new(KeptKeyStore(Arc::clone(ks))));
        }
    }
}

fn fetch(keystore: &dyn KeyStore) -> Result<FetchedKey, FieldcaseError> {
    FetchedKey::fetch(keystore)
        .map_err(|e| FieldcaseError::from(fieldcase_core::CoreError::from(e)))
}

/// What a store opens with, so that the unlock screen asks for a passphrase only when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UnlockNeeds {
    /// The keystore key is needed (the platform may ask the worker to authenticate).
    pub keystore: bool,
    /// The worker's passphrase is needed.
    pub passphrase: bool,
}

#[uniffi::export]
impl FieldcaseDevice {
    /// Enrolls this phone with the code an admin issued, at the office `server_url`
    /// (`https://host:port`) whose certificate has `fingerprint` (64 hex digits; colons and case
    /// are ignored). Creates the encrypted store in `dir`, wrapped to the keystore's key and/or the
    /// passphrase (at least one), and returns the device unlocked.
    #[uniffi::constructor]
    pub fn enroll(
        dir: String,
        server_url: String,
        fingerprint: String,
        code: String,
        keystore: Option<Arc<dyn KeyStore>>,
        passphrase: Option<String>,
        options: DeviceOptions,
    ) -> Result<Arc<Self>, FieldcaseError> {
        let mut passphrase = passphrase;
        let result = call_ffi(|| {
            let pin =
                Fingerprint::parse(&fingerprint).map_err(|_| FieldcaseError::InvalidInput {
                    detail: "invalid certificate fingerprint".into(),
                })?;
            let key = keystore.as_deref().map(fetch).transpose()?;
            let server = ServerAddress {
                url: server_url.trim().to_owned(),
                pin,
            };
            let keys = KeySetup {
                keystore: key
                    .as_ref()
                    .map(|k| k as &dyn fieldcase_core::crypto::KeyProvider),
                passphrase: passphrase.as_deref(),
            };
            call(|| {
                Device::enroll(
                    &PathBuf::from(&dir),
                    &server,
                    code.trim(),
                    keys,
                    options.to_core(),
                )
            })
        });
        if let Some(p) = passphrase.as_mut() {
            p.zeroize();
        }
        result.map(|inner| {
            let device = Self { inner };
            device.keep(keystore.as_ref());
            Arc::new(device)
        })
    }

    /// Enrolls this phone with the enrollment invite the office's QR code holds (the office's
    /// address, its certificate fingerprint and the one-time code, checksummed): the app scans
    /// the code and passes its text, and the worker types only her passphrase. Otherwise as
    /// [`FieldcaseDevice::enroll`]; an invite that does not parse is
    /// [`FieldcaseError::InvalidInvite`] and nothing is sent.
    #[uniffi::constructor]
    pub fn enroll_with_invite(
        dir: String,
        invite: String,
        keystore: Option<Arc<dyn KeyStore>>,
        passphrase: Option<String>,
        options: DeviceOptions,
    ) -> Result<Arc<Self>, FieldcaseError> {
        let parsed = call(|| {
            fieldcase_core::protocol::EnrollmentInvite::parse(&invite).map_err(Into::into)
        })?;
        Self::enroll(
            dir,
            parsed.url,
            parsed.pin.to_hex(),
            parsed.code,
            keystore,
            passphrase,
            options,
        )
    }

    /// Opens the enrolled phone's store in `dir`, locked. [`FieldcaseError::NoStore`] when none
    /// exists (not enrolled yet, or wiped).
    #[uniffi::constructor]
    pub fn open(dir: String, options: DeviceOptions) -> Result<Arc<Self>, FieldcaseError> {
        call(|| Device::open(&PathBuf::from(&dir), options.to_core()))
            .map(|inner| Arc::new(Self { inner }))
    }

    /// What this store opens with (readable while locked): the keystore key and the passphrase
    /// together, the keystore key alone, or the passphrase alone.
    pub fn unlock_needs(&self) -> Result<UnlockNeeds, FieldcaseError> {
        call(|| self.inner.store().unlock_needs()).map(|n| UnlockNeeds {
            keystore: n.keystore,
            passphrase: n.passphrase,
        })
    }

    /// Unlocks with what the store needs ([`FieldcaseDevice::unlock_needs`]).
    /// [`FieldcaseError::AuthenticationRequired`]: show the platform's prompt, then call again;
    /// [`FieldcaseError::UnlockNeeds`]: something needed was not given;
    /// [`FieldcaseError::TooManyAttempts`]: wait as long as it says.
    pub fn unlock(
        &self,
        keystore: Option<Arc<dyn KeyStore>>,
        passphrase: Option<String>,
    ) -> Result<(), FieldcaseError> {
        let mut passphrase = passphrase;
        self.keep(keystore.as_ref());
        let result = call_ffi(|| {
            let key = keystore.as_deref().map(fetch).transpose()?;
            call(|| {
                self.inner.store().unlock(
                    key.as_ref()
                        .map(|k| k as &dyn fieldcase_core::crypto::KeyProvider),
                    passphrase.as_deref(),
                )
            })
        });
        if let Some(p) = passphrase.as_mut() {
            p.zeroize();
        }
        result
    }

    /// Unlocks with the platform keystore's key.
    pub fn unlock_with_keystore(&self, keystore: Arc<dyn KeyStore>) -> Result<(), FieldcaseError> {
        self.keep(Some(&keystore));
        let key = fetch(keystore.as_ref())?;
        call(|| self.inner.store().unlock_with_keystore(&key))
    }

    /// Unlocks a store made without a keystore with the worker's passphrase.
    pub fn unlock_with_passphrase(&self, passphrase: String) -> Result<(), FieldcaseError> {
        let mut passphrase = passphrase;
        let result = call(|| self.inner.store().unlock_with_passphrase(&passphrase));
        passphrase.zeroize();
        result
    }

    /// Sets the duress PIN: a second passphrase (as strong as the first, and another one) that
    /// the worker types at unlock instead of her passphrase when she is forced to open the
    /// phone. It destroys the store at once and opens a workspace that looks like a phone with no
    /// cases assigned yet; its next sync tells the office, which revokes the phone and alerts the
    /// worker's team. `keystore`: the platform keystore, for a store that opens with it and the
    /// passphrase. The store must be unlocked. [`FieldcaseError::WeakPassphrase`] for a weak PIN.
    pub fn set_duress_pin(
        &self,
        keystore: Option<Arc<dyn KeyStore>>,
        pin: String,
    ) -> Result<(), FieldcaseError> {
        let mut pin = pin;
        self.keep(keystore.as_ref());
        let result = call_ffi(|| {
            let key = keystore.as_deref().map(fetch).transpose()?;
            call(|| {
                self.inner.set_duress_pin(
                    key.as_ref()
                        .map(|k| k as &dyn fieldcase_core::crypto::KeyProvider),
                    &pin,
                )
            })
        });
        pin.zeroize();
        result
    }

    /// Adds the worker's passphrase to a phone enrolled with the keystore key alone: from then on
    /// it opens only with the keystore key and the passphrase together (`unlock_needs` says so),
    /// wrong passphrases are counted and slowed, and a duress PIN can be set. The store must be
    /// unlocked. [`FieldcaseError::WeakPassphrase`] for a weak one, [`FieldcaseError::WrongKey`]
    /// for a keystore that does not open this store, [`FieldcaseError::InvalidInput`] when the
    /// store has a passphrase already; nothing is changed then.
    pub fn add_passphrase(
        &self,
        keystore: Arc<dyn KeyStore>,
        passphrase: String,
    ) -> Result<(), FieldcaseError> {
        let mut passphrase = passphrase;
        self.keep(Some(&keystore));
        let result = call_ffi(|| {
            let key = fetch(keystore.as_ref())?;
            call(|| self.inner.add_passphrase(&key, &passphrase))
        });
        passphrase.zeroize();
        result
    }

    /// Closes this object now: forgets the data key and every decrypted document and closes the
    /// database, without waiting for the garbage collector to drop it (which a reference kept
    /// somewhere, or a failed call that kept one, can put off forever). Every later call is
    /// [`FieldcaseError::Closed`]; `open` opens the store again. Closing twice is fine.
    pub fn close(&self) {
        let _ = call_ffi(|| {
            self.inner.store().close();
            Ok(())
        });
    }

    /// Forgets the data key and every decrypted document (the app going to the background).
    pub fn lock(&self) -> Result<(), FieldcaseError> {
        call(|| self.inner.store().lock())
    }

    /// Whether the store is unlocked.
    pub fn is_unlocked(&self) -> bool {
        call_ffi(|| Ok(self.inner.store().is_unlocked())).unwrap_or(false)
    }

    /// This worker's tasks today, in the phone's UTC offset (minutes east of UTC).
    pub fn today_tasks(&self, utc_offset_minutes: i32) -> Result<Vec<TaskSummary>, FieldcaseError> {
        let offset = offset(utc_offset_minutes)?;
        call(|| self.inner.store().today_tasks(offset)).map(convert)
    }

    /// This worker's tasks on the calendar day `day` (`YYYY-MM-DD`) in the given UTC offset.
    pub fn tasks_on(
        &self,
        day: String,
        utc_offset_minutes: i32,
    ) -> Result<Vec<TaskSummary>, FieldcaseError> {
        let (day, offset) = (parse_date(&day)?, offset(utc_offset_minutes)?);
        call(|| self.inner.store().my_tasks_on(day, offset)).map(convert)
    }

    /// This worker's open tasks from now over the next `days` days.
    pub fn upcoming_tasks(&self, days: u32) -> Result<Vec<TaskSummary>, FieldcaseError> {
        call(|| self.inner.store().upcoming_tasks(days)).map(convert)
    }

    /// Every case on the device, most recently active first.
    pub fn list_cases(&self) -> Result<Vec<CaseSummary>, FieldcaseError> {
        call(|| self.inner.store().list_cases()).map(convert)
    }

    /// A whole case.
    pub fn case(&self, case_id: String) -> Result<Case, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().case(case)).map(Into::into)
    }

    /// A case's notes and tasks in time order.
    pub fn timeline(&self, case_id: String) -> Result<Vec<TimelineEntry>, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().timeline(case)).map(convert)
    }

    /// Writes a visit note; durable when this returns. Returns the note's id.
    pub fn write_note(&self, case_id: String, note: NewNote) -> Result<String, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let note = note.to_core()?;
        call(|| self.inner.store().write_note(case, &note)).map(|id| id.to_string())
    }

    /// Replaces a note's body (merged character-wise with concurrent edits).
    pub fn edit_note(
        &self,
        case_id: String,
        note_id: String,
        body: String,
    ) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let note: NoteId = parse_id(&note_id)?;
        call(|| self.inner.store().edit_note(case, note, &body))
    }

    /// Changes a task's status, outcome, follow-up date or time.
    pub fn update_task(
        &self,
        case_id: String,
        task_id: String,
        update: TaskUpdate,
    ) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let task: TaskId = parse_id(&task_id)?;
        let update = update.to_core()?;
        call(|| self.inner.store().update_task(case, task, &update))
    }

    /// Records the client's consent, risk level or legal status. These are sensitive: a
    /// concurrent change on another phone waits in the office's conflict inbox until a case
    /// manager settles it; [`FieldcaseDevice::conflicts`] shows it meanwhile.
    pub fn update_case(&self, case_id: String, update: CaseUpdate) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let update = update.into();
        call(|| self.inner.store().update_case(case, &update))
    }

    /// The case's individual recovery plan: goals, services given, reviews (also in `case`).
    pub fn plan(&self, case_id: String) -> Result<Plan, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().plan(case)).map(Into::into)
    }

    /// Sets a goal of the recovery plan (it starts as planned); returns its id.
    pub fn add_goal(&self, case_id: String, goal: NewGoal) -> Result<String, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let goal = goal.to_core()?;
        call(|| self.inner.store().add_goal(case, &goal)).map(|id| id.to_string())
    }

    /// Changes a goal's area, description, status or target date. The status is sensitive: a
    /// concurrent change on another phone waits in the office's conflict inbox.
    pub fn update_goal(
        &self,
        case_id: String,
        goal_id: String,
        update: GoalUpdate,
    ) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let goal: GoalId = parse_id(&goal_id)?;
        let update = update.to_core()?;
        call(|| self.inner.store().update_goal(case, goal, &update))
    }

    /// Records a service given to the client, linked to goals, tasks and notes; returns its id.
    pub fn add_service(
        &self,
        case_id: String,
        service: NewService,
    ) -> Result<String, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let service = service.to_core()?;
        call(|| self.inner.store().add_service(case, &service)).map(|id| id.to_string())
    }

    /// Records a review of the recovery plan by this phone's user; returns its id.
    pub fn add_review(&self, case_id: String, review: NewReview) -> Result<String, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let review = review.to_core()?;
        call(|| self.inner.store().add_review(case, &review)).map(|id| id.to_string())
    }

    /// Records the client profile (HTCDS v2 core fields); only the fields that changed are
    /// written.
    pub fn set_profile(
        &self,
        case_id: String,
        profile: ClientProfile,
    ) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let profile = profile.to_core()?;
        call(|| self.inner.store().set_profile(case, &profile))
    }

    /// The history of the case's plan, profile and life, oldest first.
    pub fn history(&self, case_id: String) -> Result<Vec<HistoryEntry>, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().history(case)).map(convert)
    }

    /// Ticks or unticks a checklist item.
    pub fn set_checklist_item(
        &self,
        case_id: String,
        task_id: String,
        item_id: String,
        done: bool,
    ) -> Result<(), FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let task: TaskId = parse_id(&task_id)?;
        let item: ChecklistItemId = parse_id(&item_id)?;
        call(|| {
            self.inner
                .store()
                .set_checklist_item(case, task, item, done)
        })
    }

    /// Adds an item to a task's checklist; returns its id.
    pub fn add_checklist_item(
        &self,
        case_id: String,
        task_id: String,
        label: String,
    ) -> Result<String, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let task: TaskId = parse_id(&task_id)?;
        call(|| self.inner.store().add_checklist_item(case, task, &label)).map(|id| id.to_string())
    }

    /// Fields of the case and its tasks that hold concurrent values, with their authors.
    pub fn conflicts(&self, case_id: String) -> Result<Vec<Conflict>, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().conflicts(case)).map(convert)
    }

    /// Local edits that have not reached the office yet, oldest first.
    pub fn pending_changes(&self) -> Result<Vec<PendingChange>, FieldcaseError> {
        call(|| self.inner.store().pending_changes()).map(convert)
    }

    /// Folds change rows into snapshots (idle moments); returns how many cases were compacted.
    pub fn compact(&self) -> Result<u32, FieldcaseError> {
        call(|| self.inner.store().compact()).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Syncs with the office now (the store must be unlocked; an expired lease does not stop a
    /// sync, which renews it). Blocks until done. [`FieldcaseError::Network`] means offline: retry
    /// later; [`FieldcaseError::RevokedAndWiped`] means the office revoked this phone and core
    /// obeyed its signed wipe order: the store and the keystore's key (the one this device was
    /// last given) are gone; show the revoked screen.
    pub fn sync_now(&self) -> Result<SyncReport, FieldcaseError> {
        call(|| self.inner.sync_now()).map(Into::into)
    }

    /// [`FieldcaseDevice::sync_now`], telling `listener` how far the sync has come (cases and
    /// bytes done and expected, for a progress bar): events never go backwards and the last one
    /// is `finished`, with done equal to expected. The listener is called on a background
    /// thread, never the caller's; a slow listener does not slow the sync (it is given the
    /// latest event when it returns), and an exception it throws ends its events, not the sync.
    /// Returns once the last event was handed to the listener (or, if the listener is still
    /// busy, after at most two seconds). Errors as for `sync_now`; a failed sync sends no
    /// `finished` event.
    pub fn sync_now_with_progress(
        &self,
        listener: Arc<dyn SyncProgressListener>,
    ) -> Result<SyncReport, FieldcaseError> {
        let listener: Arc<dyn fieldcase_core::sync::ProgressListener> =
            Arc::new(ForeignListener(listener));
        call(|| self.inner.sync_now_with_progress(Some(listener))).map(Into::into)
    }

    /// The office certificate fingerprints this phone accepts (64 lowercase hex digits each),
    /// the one it last saw the office use first; two while the office rotates its certificate.
    /// The store must be unlocked.
    pub fn pins(&self) -> Result<Vec<String>, FieldcaseError> {
        call(|| self.inner.pins()).map(|pins| pins.iter().map(Fingerprint::to_hex).collect())
    }

    /// Accepts the office certificate `fingerprint` as well (64 hex digits; colons, spaces and
    /// case are ignored), for a phone that was away while the office replaced its certificate:
    /// its sync fails with [`FieldcaseError::PinMismatch`], whose `server_shows` is what the
    /// server presents. Call this only with the fingerprint the worker got from the office by a
    /// channel she trusts (the admin reads it out in person or on the phone), never with
    /// `server_shows` itself: whoever a phone trusts gets its requests. The next successful
    /// sync keeps only the certificates the office shows and announces. The store must be
    /// unlocked.
    pub fn repin(&self, fingerprint: String) -> Result<(), FieldcaseError> {
        call_ffi(|| {
            let pin =
                Fingerprint::parse(&fingerprint).map_err(|_| FieldcaseError::InvalidInput {
                    detail: "invalid certificate fingerprint".into(),
                })?;
            call(|| self.inner.repin(pin))
        })
    }

    /// The fingerprint of this phone's device key (`3F2A-91C0-77DE-0B14`): show it after
    /// enrollment; an admin confirms the phone by it before it may sync.
    pub fn key_fingerprint(&self) -> Result<String, FieldcaseError> {
        call(|| self.inner.key_fingerprint())
    }

    /// Who this phone is: the enrolled worker's and the device's ids (for an about screen and
    /// for the office to recognise the phone). The store must be unlocked.
    pub fn identity(&self) -> Result<Author, FieldcaseError> {
        call(|| self.inner.store().author()).map(Into::into)
    }

    /// Panic wipe: makes the case data unreadable at once, with no network, and destroys the
    /// keystore's key (`keystore`, or the one this device was last given). What it leaves for
    /// the office is sealed to the office's key (no address, fingerprint or reason readable on
    /// the phone): send it with [`FieldcaseDevice::send_wipe_receipt`] while this object lives;
    /// after a restart the next enrollment sends it, or [`send_pending_wipe_receipt`].
    pub fn panic_wipe(
        &self,
        keystore: Option<Arc<dyn KeyStore>>,
    ) -> Result<WipeReport, FieldcaseError> {
        self.keep(keystore.as_ref());
        call(|| self.inner.panic_wipe()).map(Into::into)
    }

    /// Destroys the store on this phone (crypto-shredding every copy of it) and the keystore's
    /// key (`keystore`, or the one this device was last given), leaving nothing for the office.
    /// Works locked or unlocked, with no network.
    pub fn wipe(&self, keystore: Option<Arc<dyn KeyStore>>) -> Result<WipeReport, FieldcaseError> {
        self.keep(keystore.as_ref());
        call(|| self.inner.wipe()).map(Into::into)
    }

    /// Sends what a wipe of this device left for the office to the office it was enrolled with
    /// (its address kept in memory since the wipe, never on the phone's storage). Returns
    /// whether anything was sent; [`FieldcaseError::Network`] when the office cannot be reached
    /// (it waits; call again later).
    pub fn send_wipe_receipt(&self) -> Result<bool, FieldcaseError> {
        call(|| self.inner.send_pending_receipt())
    }
}

fn convert<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(Into::into).collect()
}

/// Sends what a wipe left in `dir` (sealed to the office) to the office at `server_url` whose
/// certificate has `fingerprint` (the address the app has again, for instance from the office's
/// enrollment QR code), and removes what the office took. Returns whether anything was sent.
#[uniffi::export]
pub fn send_pending_wipe_receipt(
    dir: String,
    server_url: String,
    fingerprint: String,
) -> Result<bool, FieldcaseError> {
    let pin = Fingerprint::parse(&fingerprint).map_err(|_| FieldcaseError::InvalidInput {
        detail: "invalid certificate fingerprint".into(),
    })?;
    let server = ServerAddress {
        url: server_url.trim().to_owned(),
        pin,
    };
    call(|| fieldcase_core::device::send_pending_receipt(&PathBuf::from(&dir), &server))
}

/// What an enrollment invite holds, for the app to show before it enrolls ("enroll with the
/// office at …").
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentInvite {
    /// The office's address, `https://host[:port]`.
    pub server_url: String,
    /// The office's certificate fingerprint, 64 lowercase hex digits.
    pub fingerprint: String,
    /// The one-time enrollment code, in groups of four.
    pub code: String,
}

/// Reads the text of a scanned enrollment QR code. [`FieldcaseError::InvalidInvite`] says why
/// one cannot be used.
#[uniffi::export]
pub fn parse_enrollment_invite(text: String) -> Result<EnrollmentInvite, FieldcaseError> {
    let invite =
        call(|| fieldcase_core::protocol::EnrollmentInvite::parse(&text).map_err(Into::into))?;
    Ok(EnrollmentInvite {
        server_url: invite.url.clone(),
        fingerprint: invite.pin.to_hex(),
        code: invite.display_code(),
    })
}

/// The version of the fieldcase library, for an about screen and bug reports.
#[uniffi::export]
pub fn fieldcase_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Makes core panic on purpose and returns what the app receives: a
/// [`FieldcaseError::Internal`], never a crashed process. The panic is raised inside
/// fieldcase-core ([`fieldcase_core::selfcheck::deliberate_panic`]) and unwinds through its frames
/// to this boundary. For the binding tests and an app's self-check of the panic boundary.
#[uniffi::export]
pub fn check_panic_boundary() -> Result<(), FieldcaseError> {
    call(|| -> fieldcase_core::Result<()> { fieldcase_core::selfcheck::deliberate_panic() })
}

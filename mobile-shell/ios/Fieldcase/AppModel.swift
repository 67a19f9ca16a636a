// The iOS app's model: the same states and the same sync policy as the JVM-tested Kotlin session
// (mobile-shell/shared/.../Session.kt and BackgroundSync.kt), kept as small as possible. Every rule
// about the data is in Rust behind the bindings; this file only picks the screen and schedules
// sync. Calls block, so they run on a background queue.
import BackgroundTasks
import Foundation
import Network

enum Screen: Equatable {
    case enroll, unlock, today, revoked
    case timeline(caseId: String)
    case noteEditor(caseId: String, noteId: String?, taskId: String?)
    case checklist(caseId: String, taskId: String)
    case syncStatus
}

@MainActor
final class AppModel: ObservableObject {
    @Published var screen: Screen = .unlock
    @Published var error: String?
    @Published var today: [TaskSummary] = []
    @Published var timeline: [TimelineEntry] = []
    @Published var task: Task?
    @Published var pending = 0
    @Published var failures = 0
    @Published var lastSync: Date?

    private let dir: String
    private let keyStore = KeychainKeyStore()
    private var device: FieldcaseDevice?
    private let queue = DispatchQueue(label: "fieldcase.device")
    private var syncTimer: DispatchWorkItem?
    private let path = NWPathMonitor()
    /// The BGTaskScheduler identifier of the sync the OS runs (Info.plist permits it).
    static let syncTask = "org.fieldcase.sync"

    init() {
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        var folder = support.appendingPathComponent("store")
        // Not in iCloud or iTunes backups, and unreadable while the phone is locked.
        try? FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true,
            attributes: [.protectionKey: FileProtectionType.complete])
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try? folder.setResourceValues(values)
        dir = folder.path
        // The network returning after a failed sync runs one at once (the shared trigger's rule).
        path.pathUpdateHandler = { [weak self] update in
            guard update.status == .satisfied else { return }
            DispatchQueue.main.async {
                guard let self, self.failures > 0 else { return }
                self.syncNow()
            }
        }
        path.start(queue: DispatchQueue(label: "fieldcase.network"))
        run({ try FieldcaseDevice.open(dir: self.dir, options: DeviceOptions(scryptWorkFactor: nil)) }) { d in
            self.device = d
            self.screen = .unlock
        }
    }

    /// Runs `work` off the main thread; errors that change the screen are handled here.
    private func run<T>(_ work: @escaping () throws -> T, then: @escaping (T) -> Void = { _ in }) {
        queue.async {
            do {
                let value = try work()
                DispatchQueue.main.async { then(value) }
            } catch let e as FieldcaseError {
                DispatchQueue.main.async { self.handle(e) }
            } catch {
                DispatchQueue.main.async { self.error = "\(error)" }
            }
        }
    }

    private func handle(_ e: FieldcaseError) {
        switch e {
        case .RevokedAndWiped: screen = .revoked; syncTimer?.cancel()
        case .NoStore: screen = device == nil ? .enroll : .revoked
        case .Locked, .LeaseExpired: screen = .unlock
        case .AuthenticationRequired: screen = .unlock; error = "Confirm it is you, then unlock again."
        default: error = "\(e)"
        }
    }

    func enroll(url: String, fingerprint: String, code: String, passphrase: String) {
        run({
            try FieldcaseDevice.enroll(dir: self.dir, serverUrl: url, fingerprint: fingerprint, code: code,
                                       keystore: self.keyStore, passphrase: passphrase,
                                       options: DeviceOptions(scryptWorkFactor: nil))
        }) { d in
            self.device = d
            self.syncNow()
            self.showToday()
        }
    }

    /// Enrolls with the text of the office's enrollment QR code.
    func enrollWithInvite(invite: String, passphrase: String) {
        run({
            try FieldcaseDevice.enrollWithInvite(dir: self.dir, invite: invite, keystore: self.keyStore,
                                                 passphrase: passphrase,
                                                 options: DeviceOptions(scryptWorkFactor: nil))
        }) { d in
            self.device = d
            self.syncNow()
            self.showToday()
        }
    }

    func unlock(passphrase: String?) {
        guard let d = device else { return }
        run({
            try d.unlock(keystore: self.keyStore, passphrase: passphrase?.isEmpty == false ? passphrase : nil)
        }) { _ in self.showToday(); self.syncNow() }
    }

    func lock() {
        guard let d = device else { return }
        run({ try d.lock() })
    }

    func showToday() {
        guard let d = device else { return }
        let offset = Int32(TimeZone.current.secondsFromGMT() / 60)
        run({ try d.todayTasks(utcOffsetMinutes: offset) }) { self.today = $0; self.screen = .today }
    }

    func openCase(_ caseId: String) {
        guard let d = device else { return }
        run({ try d.timeline(caseId: caseId) }) { self.timeline = $0; self.screen = .timeline(caseId: caseId) }
    }

    func openChecklist(caseId: String, taskId: String) {
        guard let d = device else { return }
        run({ try d.case(caseId: caseId).tasks.first { $0.id == taskId } }) { t in
            self.task = t
            self.screen = .checklist(caseId: caseId, taskId: taskId)
        }
    }

    func saveNote(caseId: String, noteId: String?, taskId: String?, body: String) {
        guard let d = device else { return }
        run({
            if let id = noteId { try d.editNote(caseId: caseId, noteId: id, body: body) }
            else { _ = try d.writeNote(caseId: caseId, note: NewNote(kind: .visit, body: body, tags: [], taskId: taskId)) }
        }) { _ in self.openCase(caseId) }
    }

    func tick(caseId: String, taskId: String, itemId: String, done: Bool) {
        guard let d = device else { return }
        run({ try d.setChecklistItem(caseId: caseId, taskId: taskId, itemId: itemId, done: done) }) { _ in
            self.openChecklist(caseId: caseId, taskId: taskId)
        }
    }

    func setStatus(caseId: String, taskId: String, status: TaskStatus) {
        guard let d = device else { return }
        let update = TaskUpdate(status: status, outcome: nil, followUp: nil, scheduledAt: nil)
        run({ try d.updateTask(caseId: caseId, taskId: taskId, update: update) }) { _ in
            self.openChecklist(caseId: caseId, taskId: taskId)
        }
    }

    /// Syncs now; on failure retries with the shared policy: equal-jitter exponential backoff
    /// (5 s doubling up to 15 min), every 5 min after a success.
    func syncNow() {
        guard let d = device else { return }
        syncTimer?.cancel()
        queue.async {
            var delay: Double? = 300
            var revoked = false
            do {
                _ = try d.syncNow()
                DispatchQueue.main.async { self.failures = 0; self.lastSync = Date() }
            } catch FieldcaseError.RevokedAndWiped {
                revoked = true
                delay = nil
            } catch FieldcaseError.Locked {
                // The key needs the worker: nothing is scheduled until she unlocks.
                delay = nil
            } catch {
                delay = nil
                DispatchQueue.main.async {
                    self.failures += 1
                    let cap = min(900.0, 5.0 * pow(2.0, Double(self.failures - 1)))
                    self.schedule(after: cap / 2 + Double.random(in: 0...(cap / 2)))
                }
            }
            let pending = (try? d.pendingChanges().count) ?? 0
            DispatchQueue.main.async {
                self.pending = pending
                if revoked { self.screen = .revoked }
                if let delay { self.schedule(after: delay) }
            }
        }
    }

    private func schedule(after seconds: Double) {
        let item = DispatchWorkItem { [weak self] in self?.syncNow() }
        syncTimer = item
        DispatchQueue.main.asyncAfter(deadline: .now() + seconds, execute: item)
        // And ask the OS to run it if the app is suspended by then (it decides when, never
        // before this date, and only with a network for a refresh task's URL work).
        let request = BGAppRefreshTaskRequest(identifier: AppModel.syncTask)
        request.earliestBeginDate = Date(timeIntervalSinceNow: seconds)
        try? BGTaskScheduler.shared.submit(request)
    }

    /// What the OS runs for `syncTask`: one sync (none while locked: the key needs the worker),
    /// then the next request is submitted by `schedule(after:)`.
    func runBackgroundSync(_ task: BGAppRefreshTask) {
        guard let d = device else { task.setTaskCompleted(success: true); return }
        task.expirationHandler = { task.setTaskCompleted(success: false) }
        queue.async {
            let ok = (try? d.syncNow()) != nil
            DispatchQueue.main.async {
                if ok { self.failures = 0; self.lastSync = Date(); self.schedule(after: 900) }
                task.setTaskCompleted(success: ok)
            }
        }
    }

    /// Adds a passphrase to a phone enrolled without one.
    func addPassphrase(_ passphrase: String) {
        guard let d = device else { return }
        run({ try d.addPassphrase(keystore: self.keyStore, passphrase: passphrase) }) { _ in self.error = nil }
    }

    /// Sets the duress PIN.
    func setDuressPin(_ pin: String) {
        guard let d = device else { return }
        run({ try d.setDuressPin(keystore: self.keyStore, pin: pin) }) { _ in self.error = nil }
    }

    /// Whether the store opens with a passphrase.
    func hasPassphrase() -> Bool { (try? device?.unlockNeeds().passphrase) ?? true }

    func panicWipe() {
        guard let d = device else { return }
        // The panic wipe, not the plain one: core destroys the Keychain item and leaves a signed
        // receipt for the office, sealed to the office's key (no address on the phone), sent now
        // if the office is reachable; otherwise the next enrollment sends it.
        run({ () -> Void in
            _ = try d.panicWipe(keystore: self.keyStore)
            _ = try? d.sendWipeReceipt()
        }) { _ in self.screen = .revoked }
    }
}

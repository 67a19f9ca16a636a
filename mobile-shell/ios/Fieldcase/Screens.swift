// The SwiftUI screens: enroll, unlock, today's tasks, case timeline, note editor, task
// checklist, sync status, revoked. Each draws AppModel state and calls one AppModel function.
import SwiftUI
import VisionKit

struct RootView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        VStack(alignment: .leading) {
            if let error = model.error { Text(error).foregroundColor(.red) }
            switch model.screen {
            case .enroll: EnrollView()
            case .unlock: UnlockView()
            case .today: TodayView()
            case .timeline(let caseId): TimelineView(caseId: caseId)
            case .noteEditor(let caseId, let noteId, let taskId):
                NoteEditorView(caseId: caseId, noteId: noteId, taskId: taskId)
            case .checklist(let caseId, let taskId): ChecklistView(caseId: caseId, taskId: taskId)
            case .syncStatus: SyncStatusView()
            case .revoked: RevokedView()
            }
        }
        .padding()
        .privacySensitive()
    }
}

struct EnrollView: View {
    @EnvironmentObject var model: AppModel
    @State private var url = "https://"
    @State private var pin = ""
    @State private var code = ""
    @State private var passphrase = ""
    @State private var scanning = false

    var body: some View {
        Text("Enroll this phone").font(.title2)
        TextField("Office address", text: $url)
        TextField("Certificate fingerprint", text: $pin)
        TextField("Enrollment code", text: $code)
        SecureField("Your passphrase (asked at every unlock)", text: $passphrase)
        Button("Enroll") { model.enroll(url: url, fingerprint: pin, code: code, passphrase: passphrase) }
        // Or scan the office's enrollment QR code: the address, certificate and code in one.
        if DataScannerViewController.isSupported {
            Button("Scan the office's code and enroll") { scanning = true }
                .sheet(isPresented: $scanning) {
                    InviteScanner { text in
                        scanning = false
                        model.enrollWithInvite(invite: text, passphrase: passphrase)
                    }
                }
        }
    }
}

/// The camera's QR scanner (VisionKit), handing back the first code's text.
struct InviteScanner: UIViewControllerRepresentable {
    let found: (String) -> Void

    func makeUIViewController(context: Context) -> DataScannerViewController {
        let scanner = DataScannerViewController(recognizedDataTypes: [.barcode(symbologies: [.qr])])
        scanner.delegate = context.coordinator
        try? scanner.startScanning()
        return scanner
    }

    func updateUIViewController(_ controller: DataScannerViewController, context: Context) {}

    func makeCoordinator() -> Coordinator { Coordinator(found: found) }

    final class Coordinator: NSObject, DataScannerViewControllerDelegate {
        let found: (String) -> Void
        private var done = false
        init(found: @escaping (String) -> Void) { self.found = found }

        func dataScanner(_ scanner: DataScannerViewController, didAdd items: [RecognizedItem],
                         allItems: [RecognizedItem]) {
            for case .barcode(let code) in items {
                if !done, let text = code.payloadStringValue {
                    done = true
                    scanner.stopScanning()
                    found(text)
                }
            }
        }
    }
}

struct UnlockView: View {
    @EnvironmentObject var model: AppModel
    @State private var passphrase = ""

    var body: some View {
        Text("fieldcase is locked").font(.title2)
        SecureField("Passphrase", text: $passphrase)
        Button("Unlock") { model.unlock(passphrase: passphrase) }
    }
}

struct TodayView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        HStack {
            Text("Today").font(.title2)
            Spacer()
            Button("Sync") { model.screen = .syncStatus }
        }
        List(model.today, id: \.taskId) { t in
            VStack(alignment: .leading) {
                Text("\(String(t.scheduledAt.dropFirst(11).prefix(5)))  \(t.clientCode) — \(t.purpose)")
                Text("\(t.officeName) · \(t.checklistDone)/\(t.checklistTotal)").font(.caption)
            }
            .onTapGesture { model.openCase(t.caseId) }
        }
    }
}

struct TimelineView: View {
    @EnvironmentObject var model: AppModel
    let caseId: String

    var body: some View {
        HStack {
            Button("Back") { model.showToday() }
            Spacer()
            Button("New note") { model.screen = .noteEditor(caseId: caseId, noteId: nil, taskId: nil) }
        }
        List(Array(model.timeline.enumerated()), id: \.offset) { _, entry in
            switch entry {
            case .note(let note):
                VStack(alignment: .leading) {
                    Text(String(note.writtenAt.prefix(16))).font(.caption)
                    Text(note.body)
                }
                .onTapGesture {
                    model.screen = .noteEditor(caseId: caseId, noteId: note.id, taskId: note.taskId)
                }
            case .task(let task):
                VStack(alignment: .leading) {
                    Text("\(String(task.scheduledAt.prefix(16))) · \(task.officeName)").font(.caption)
                    Text(task.purpose)
                }
                .onTapGesture { model.openChecklist(caseId: caseId, taskId: task.id) }
            }
        }
    }
}

struct NoteEditorView: View {
    @EnvironmentObject var model: AppModel
    let caseId: String
    let noteId: String?
    let taskId: String?
    @State private var body_ = ""

    var body: some View {
        TextEditor(text: $body_)
            .onAppear {
                for case .note(let note) in model.timeline where note.id == noteId { body_ = note.body }
            }
        HStack {
            Button("Cancel") { model.openCase(caseId) }
            Button("Save") { model.saveNote(caseId: caseId, noteId: noteId, taskId: taskId, body: body_) }
        }
    }
}

struct ChecklistView: View {
    @EnvironmentObject var model: AppModel
    let caseId: String
    let taskId: String

    var body: some View {
        if let task = model.task {
            Button("Back") { model.openCase(caseId) }
            Text(task.purpose).font(.title2)
            ForEach(task.checklist, id: \.id) { item in
                Toggle(item.label, isOn: Binding(
                    get: { item.done },
                    set: { model.tick(caseId: caseId, taskId: taskId, itemId: item.id, done: $0) }))
            }
            HStack {
                Button("Done") { model.setStatus(caseId: caseId, taskId: taskId, status: .done) }
                Button("Missed") { model.setStatus(caseId: caseId, taskId: taskId, status: .missed) }
                Button("Write note") {
                    model.screen = .noteEditor(caseId: caseId, noteId: nil, taskId: taskId)
                }
            }
        }
    }
}

struct SyncStatusView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        Button("Back") { model.showToday() }
        Text("Changes waiting: \(model.pending)")
        if model.failures > 0 {
            Text("Offline — will retry (\(model.failures) attempts)")
        } else if let last = model.lastSync {
            Text("Synced \(last.formatted())")
        }
        Button("Sync now") { model.syncNow() }
        Button("Wipe this phone now", role: .destructive) { model.panicWipe() }
        SecuritySection()
    }
}

/// A passphrase for a phone enrolled without one, and the duress PIN.
struct SecuritySection: View {
    @EnvironmentObject var model: AppModel
    @State private var secret = ""

    var body: some View {
        Text("Security").font(.headline)
        if !model.hasPassphrase() {
            Text("This phone opens with Face ID or the passcode alone. Add a passphrase, asked at every unlock.")
            SecureField("New passphrase", text: $secret)
            Button("Add passphrase") { model.addPassphrase(secret); secret = "" }
        } else {
            Text("A duress PIN, typed instead of your passphrase when you are forced to open the phone, destroys the cases at once and shows a phone with none; the office is told.")
            SecureField("Duress PIN", text: $secret)
            Button("Set duress PIN") { model.setDuressPin(secret); secret = "" }
        }
    }
}

struct RevokedView: View {
    var body: some View {
        Text("This phone was removed from fieldcase").font(.title2)
        Text("Its case data has been erased. Contact the office to enroll a phone again.")
    }
}

// The SwiftUI app's entry point.
import BackgroundTasks
import SwiftUI

@main
struct FieldcaseApp: App {
    @StateObject private var model: AppModel
    @Environment(\.scenePhase) private var phase

    init() {
        let model = AppModel()
        _model = StateObject(wrappedValue: model)
        // The sync the OS runs in the background (registered before launch ends, as it must be).
        BGTaskScheduler.shared.register(forTaskWithIdentifier: AppModel.syncTask, using: nil) { task in
            guard let refresh = task as? BGAppRefreshTask else { task.setTaskCompleted(success: false); return }
            // `_Concurrency.Task`: the bindings have a `Task` of their own (a case's task).
            _Concurrency.Task { @MainActor in model.runBackgroundSync(refresh) }
        }
    }

    var body: some Scene {
        WindowGroup {
            RootView().environmentObject(model)
        }
        .onChange(of: phase) { newPhase in
            if newPhase == .background { model.lock() }
        }
    }
}

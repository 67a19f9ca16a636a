// The SwiftUI app's entry point.
import SwiftUI

@main
struct FieldcaseApp: App {
    @StateObject private var model = AppModel()
    @Environment(\.scenePhase) private var phase

    var body: some Scene {
        WindowGroup {
            RootView().environmentObject(model)
        }
        .onChange(of: phase) { newPhase in
            if newPhase == .background { model.lock() }
        }
    }
}

// The Compose screens: enroll, unlock, today's tasks, case timeline, note editor, task checklist,
// sync status, revoked. Each one draws view-model state and calls one view-model function.
package org.fieldcase.android

import android.os.Bundle
import com.google.mlkit.vision.barcode.common.Barcode
import com.google.mlkit.vision.codescanner.GmsBarcodeScannerOptions
import com.google.mlkit.vision.codescanner.GmsBarcodeScanning
import android.view.WindowManager
import androidx.activity.ComponentActivity
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.compose.setContent
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Checkbox
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.viewmodel.compose.viewModel
import org.fieldcase.ffi.TaskStatus
import org.fieldcase.ffi.TaskUpdate
import org.fieldcase.ffi.TimelineEntry
import org.fieldcase.shell.SyncOutcome

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        // Case notes must not appear in screenshots or the recent-apps preview.
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        setContent { MaterialTheme { App() } }
    }

    override fun onStop() {
        super.onStop()
        if (!isChangingConfigurations) viewModels().lock()
    }

    private fun viewModels(): AppViewModel =
        androidx.lifecycle.ViewModelProvider(this)[AppViewModel::class.java]
}

@Composable
fun App(vm: AppViewModel = viewModel()) {
    Column(Modifier.fillMaxSize().padding(16.dp)) {
        vm.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        when (val s = vm.screen) {
            Screen.Enroll -> EnrollScreen(vm)
            Screen.Unlock -> UnlockScreen(vm)
            Screen.Today -> TodayScreen(vm)
            is Screen.Timeline -> TimelineScreen(vm, s.caseId)
            is Screen.NoteEditor -> NoteEditorScreen(vm, s)
            is Screen.Checklist -> ChecklistScreen(vm, s.caseId, s.taskId)
            Screen.SyncStatusScreen -> SyncStatusScreen(vm)
            Screen.Revoked -> RevokedScreen()
        }
    }
}

@Composable
fun EnrollScreen(vm: AppViewModel) {
    var url by remember { mutableStateOf("https://") }
    var pin by remember { mutableStateOf("") }
    var code by remember { mutableStateOf("") }
    Text("Enroll this phone", style = MaterialTheme.typography.headlineSmall)
    OutlinedTextField(url, { url = it }, label = { Text("Office address") })
    OutlinedTextField(pin, { pin = it }, label = { Text("Certificate fingerprint") })
    OutlinedTextField(code, { code = it }, label = { Text("Enrollment code") })
    var passphrase by remember { mutableStateOf("") }
    OutlinedTextField(
        passphrase, { passphrase = it },
        label = { Text("Your passphrase (asked at every unlock)") },
        visualTransformation = PasswordVisualTransformation(),
    )
    Button({ vm.enroll(url, pin, code, passphrase) }) { Text("Enroll") }
    // Or scan the office's enrollment QR code (Google's code scanner: no camera permission, the
    // scan runs in Play services and returns only the text).
    val context = LocalContext.current
    Button({
        GmsBarcodeScanning.getClient(
            context,
            GmsBarcodeScannerOptions.Builder().setBarcodeFormats(Barcode.FORMAT_QR_CODE).build(),
        ).startScan().addOnSuccessListener { scanned ->
            scanned.rawValue?.let { vm.enrollWithInvite(it, passphrase) }
        }
    }) { Text("Scan the office's code and enroll") }
}

@Composable
fun UnlockScreen(vm: AppViewModel) {
    var passphrase by remember { mutableStateOf("") }
    Text("fieldcase is locked", style = MaterialTheme.typography.headlineSmall)
    OutlinedTextField(
        passphrase, { passphrase = it },
        label = { Text("Passphrase") },
        visualTransformation = PasswordVisualTransformation(),
    )
    Button({ vm.unlock(passphrase) }) { Text("Unlock") }
    // The keystore key needs the screen lock first: the platform's own prompt, then unlock again.
    val context = LocalContext.current
    val confirm = rememberLauncherForActivityResult(ActivityResultContracts.StartActivityForResult()) {
        vm.authenticated(it.resultCode == android.app.Activity.RESULT_OK)
    }
    LaunchedEffect(vm.needsAuthentication) {
        if (vm.needsAuthentication) {
            val keyguard = context.getSystemService(android.app.KeyguardManager::class.java)
            @Suppress("DEPRECATION")
            val intent = keyguard?.createConfirmDeviceCredentialIntent("fieldcase", "Confirm it is you")
            if (intent != null) confirm.launch(intent) else vm.authenticated(false)
        }
    }
}

@Composable
fun TodayScreen(vm: AppViewModel) {
    Row {
        Text("Today", style = MaterialTheme.typography.headlineSmall, modifier = Modifier.weight(1f))
        TextButton({ vm.showSyncStatus() }) { Text("Sync") }
    }
    LazyColumn {
        items(vm.today) { t ->
            Column(Modifier.fillMaxWidth().clickable { vm.openCase(t.caseId) }.padding(vertical = 8.dp)) {
                Text("${t.scheduledAt.substring(11, 16)}  ${t.clientCode} — ${t.purpose}")
                Text("${t.officeName}, ${t.officeAddress}  ·  ${t.checklistDone}/${t.checklistTotal}")
            }
        }
    }
}

@Composable
fun TimelineScreen(vm: AppViewModel, caseId: String) {
    Row {
        TextButton({ vm.showToday() }) { Text("Back") }
        Button({ vm.editNote(caseId, null, null) }) { Text("New note") }
    }
    LazyColumn {
        items(vm.timeline) { e ->
            when (e) {
                is TimelineEntry.Note -> Column(
                    Modifier.fillMaxWidth().clickable { vm.editNote(caseId, e.note.id, e.note.taskId) }.padding(8.dp),
                ) {
                    Text("${e.note.writtenAt.take(16)} · ${e.note.kind}")
                    Text(e.note.body)
                }
                is TimelineEntry.Task -> Column(
                    Modifier.fillMaxWidth().clickable { vm.openChecklist(caseId, e.task.id) }.padding(8.dp),
                ) {
                    Text("${e.task.scheduledAt.take(16)} · ${e.task.officeName} · ${e.task.status}")
                    Text(e.task.purpose)
                }
            }
        }
    }
}

@Composable
fun NoteEditorScreen(vm: AppViewModel, s: Screen.NoteEditor) {
    val existing = vm.timeline.filterIsInstance<TimelineEntry.Note>().firstOrNull { it.note.id == s.noteId }
    var body by remember { mutableStateOf(existing?.note?.body ?: "") }
    OutlinedTextField(body, { body = it }, label = { Text("Visit note") }, modifier = Modifier.fillMaxWidth())
    Row {
        TextButton({ vm.openCase(s.caseId) }) { Text("Cancel") }
        Button({ vm.saveNote(s.caseId, s.noteId, s.taskId, body) }) { Text("Save") }
    }
}

@Composable
fun ChecklistScreen(vm: AppViewModel, caseId: String, taskId: String) {
    val task = vm.task ?: return
    TextButton({ vm.openCase(caseId) }) { Text("Back") }
    Text(task.purpose, style = MaterialTheme.typography.headlineSmall)
    Text("${task.officeName} · ${task.status}")
    task.checklist.forEach { item ->
        Row {
            Checkbox(item.done, { vm.tick(caseId, taskId, item.id, it) })
            Text(item.label)
        }
    }
    Row {
        Button({ vm.updateTask(caseId, taskId, TaskUpdate(TaskStatus.DONE, null, null, null)) }) { Text("Done") }
        TextButton({ vm.updateTask(caseId, taskId, TaskUpdate(TaskStatus.MISSED, null, null, null)) }) { Text("Missed") }
        TextButton({ vm.editNote(caseId, null, taskId) }) { Text("Write note") }
    }
}

@Composable
fun SyncStatusScreen(vm: AppViewModel) {
    val s = vm.syncStatus
    TextButton({ vm.showToday() }) { Text("Back") }
    Text("Changes waiting: ${s.pendingChanges}")
    Text(
        when (val o = s.lastOutcome) {
            null -> "Not synced yet"
            is SyncOutcome.Synced -> "Synced"
            is SyncOutcome.Offline -> "Offline — will retry (${s.consecutiveFailures} attempts)"
            is SyncOutcome.Failed -> "Sync failed: ${o.message}"
            is SyncOutcome.AwaitingConfirmation -> "Waiting for the office to confirm this phone: key ${o.fingerprint}"
            is SyncOutcome.CertificateChanged ->
                "The office shows a new certificate (${o.serverShows}): ask the office to read you its fingerprint before trusting it"
            SyncOutcome.Locked -> "Locked"
            SyncOutcome.Revoked -> "Revoked"
        },
    )
    Button({ vm.syncNow() }) { Text("Sync now") }
    TextButton({ vm.panicWipe() }) { Text("Wipe this phone now") }
    SecuritySection(vm)
}

/** A passphrase for a phone enrolled without one, and the duress PIN. */
@Composable
fun SecuritySection(vm: AppViewModel) {
    var secret by remember { mutableStateOf("") }
    Text("Security", style = MaterialTheme.typography.titleMedium)
    if (!vm.hasPassphrase) {
        Text("This phone opens with the screen lock alone. Add a passphrase, asked at every unlock.")
        OutlinedTextField(secret, { secret = it }, label = { Text("New passphrase") },
            visualTransformation = PasswordVisualTransformation())
        Button({ vm.addPassphrase(secret); secret = "" }) { Text("Add passphrase") }
    } else {
        Text(
            "A duress PIN, typed instead of your passphrase when you are forced to open the phone, " +
                "destroys the cases at once and shows a phone with none; the office is told.",
        )
        OutlinedTextField(secret, { secret = it }, label = { Text("Duress PIN") },
            visualTransformation = PasswordVisualTransformation())
        Button({ vm.setDuressPin(secret); secret = "" }) { Text("Set duress PIN") }
    }
}

@Composable
fun RevokedScreen() {
    Text("This phone was removed from fieldcase", style = MaterialTheme.typography.headlineSmall)
    Text("Its case data has been erased. Contact the office to enroll a phone again.")
}

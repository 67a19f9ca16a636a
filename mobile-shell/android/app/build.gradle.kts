// The app: Compose screens over mobile-shell/shared (the JVM-tested session logic) and the
// generated Kotlin bindings. Before building, run from the repository root:
//   scripts/bindings-generate        (Kotlin sources into target/bindings/kotlin)
//   scripts/bindings-android         (libfieldcase_ffi.so per ABI into app/src/main/jniLibs)
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

val repoRoot = rootDir.resolve("../..")

android {
    namespace = "org.fieldcase.android"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.fieldcase.android"
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }

    buildFeatures { compose = true }

    sourceSets["main"].java.srcDirs(
        repoRoot.resolve("mobile-shell/shared/src/main/kotlin"),
        repoRoot.resolve("target/bindings/kotlin"),
    )

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }

    buildTypes {
        release {
            isMinifyEnabled = true
            // JNA and the generated bindings are reached by reflection.
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
}

dependencies {
    implementation(platform("androidx.compose:compose-bom:2025.10.00"))
    implementation("androidx.compose.material3:material3")
    implementation("androidx.compose.ui:ui")
    implementation("androidx.activity:activity-compose:1.10.1")
    implementation("androidx.lifecycle:lifecycle-viewmodel-compose:2.9.4")
    implementation("net.java.dev.jna:jna:5.13.0@aar")
    // Syncs run by the OS when the shared trigger says, with a network.
    implementation("androidx.work:work-runtime:2.10.0")
    // The enrollment QR code, scanned by Play services (no camera permission in this app).
    implementation("com.google.android.gms:play-services-code-scanner:16.1.0")
}
